// Live progress of a running execution: its phase, rows moved, rows/s and an ETA from the
// source planner's row estimate (saying where the estimate comes from). Rows the loader
// has written before the commit are "staged": they become "written" only at the commit.
import { ACTIVE, fmtNumber, h } from "./ui.js";

export const PHASES = [
  ["validating", "Validating"], ["clearing", "Clearing"], ["loading", "Extracting/loading"],
  ["applying", "Applying"], ["verifying", "Verifying"], ["committing", "Committing"],
];
const SHOWN_AS = { extracting: "loading" }; // the extractor reads while the loader writes: one step for people

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// One line for lists: "Extracting/loading · 12,000 rows · 3,400 rows/s · about 2 min left".
export function progressText(e) {
  const parts = [e.status === "queued" ? "Waiting for a worker" : (e.phase_label || "Starting")];
  if (e.status === "running") {
    parts.push(`${fmtNumber(e.rows_read)} rows read`);
    if (e.rows_staged || e.rows_written) parts.push(`${fmtNumber(Math.max(e.rows_staged || 0, e.rows_written || 0))} staged`);
    if (e.rows_per_second) parts.push(`${fmtNumber(e.rows_per_second)} rows/s`);
    if (e.eta_seconds !== null && e.eta_seconds !== undefined) parts.push(`about ${fmtSeconds(e.eta_seconds)} left`);
  }
  return parts.join(" · ");
}

export function progressLine(e) {
  return h("p", { class: "progress-line small", dataset: { phase: e.phase || "" } }, progressText(e));
}

// The execution page's panel: phase steps, counts, a bar when there is an estimate.
export function progressPanel(e) {
  if (!ACTIVE.has(e.status)) return null;
  const current = SHOWN_AS[e.phase] || e.phase;
  const index = PHASES.findIndex(([p]) => p === current);
  const steps = h("ol", { class: "phases", "aria-label": "Phases" }, PHASES.map(([p, label], i) =>
    h("li", { class: i < index ? "phase-done" : i === index ? "phase-now" : "phase-next", "aria-current": i === index ? "step" : null },
      h("span", { class: "sr-only", text: i < index ? "done: " : i === index ? "now: " : "" }), label)));
  const moved = Math.max(e.rows_staged || 0, e.rows_written || 0);
  const pct = e.rows_estimate ? Math.min(100, Math.round((e.rows_read / e.rows_estimate) * 100)) : null;
  const fill = h("span");
  fill.style.width = `${pct ?? 0}%`; // CSSOM, not a style attribute: the page's CSP allows no inline styles
  return h("section", { class: "card progress", "aria-labelledby": "progress-h", "aria-live": "polite" },
    h("h2", { id: "progress-h", text: e.status === "queued" ? "Waiting for a worker" : `Now: ${e.phase_label || "starting"}` }),
    steps,
    h("p", { class: "progress-counts" },
      h("strong", { text: fmtNumber(e.rows_read) }), " rows read · ",
      h("strong", { text: fmtNumber(moved) }), " rows staged (written when the transaction commits) · ",
      h("strong", { text: e.rows_per_second ? fmtNumber(e.rows_per_second) : "—" }), " rows/s"),
    pct !== null ? h("div", { class: "bar", role: "progressbar", "aria-label": "Rows read of the estimate", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct) },
      fill) : null,
    h("p", { class: "small muted estimate" }, e.rows_estimate
      ? `Estimated ${fmtNumber(e.rows_estimate)} source rows (${e.estimate_source}); ${e.eta_seconds !== null && e.eta_seconds !== undefined ? `about ${fmtSeconds(e.eta_seconds)} left at the rate so far` : "no time estimate yet"}.`
      : "No completion estimate: the source engine gives no row estimate for this query (PostgreSQL's planner does for a last step that reads only its own database)."));
}
