// Preview and validation results: per step columns, rows, counts, timings or errors,
// and the destination checks, each readable without color (✓ / ✕ and words).
import { cellText, fmtNumber, h, table } from "./ui.js";

export function renderChecks(checks) {
  return h("ul", { class: "checks" }, checks.map((c) =>
    h("li", { class: c.ok ? "check-ok" : "check-fail", dataset: { check: c.check } },
      h("span", { class: "check-icon", "aria-hidden": "true", text: c.ok ? "✓" : "✕" }),
      h("span", { class: "sr-only", text: c.ok ? "passed: " : "failed: " }),
      h("strong", { text: `${c.check}` }), ` — ${c.message}`)));
}

function stepResult(step) {
  const title = h("h4", {}, `Step ${step.step}: ${step.name}`);
  if (step.error) {
    return h("div", { class: "step-result has-error", dataset: { step: step.step } }, title,
      h("p", { class: "alert alert-error", role: "alert" }, h("strong", { text: "✕ Error: " }), step.error),
      h("p", { class: "muted small", text: `after ${fmtNumber(step.elapsed_ms, 1)} ms` }));
  }
  const shown = step.rows.length;
  const count = step.truncated
    ? `first ${fmtNumber(step.row_count)} rows; more exist`
    : `${fmtNumber(step.row_count)} row${step.row_count === 1 ? "" : "s"}`;
  const stats = h("p", { class: "preview-stats" },
    h("strong", { class: "row-count", text: count }),
    ` · ${step.columns.length} column${step.columns.length === 1 ? "" : "s"} · ${fmtNumber(step.elapsed_ms, 1)} ms`,
    shown < step.row_count ? ` · showing the first ${fmtNumber(shown)}` : "");
  const headers = step.columns.map((c) => h("th", { scope: "col" }, c.name, h("span", { class: "col-type", text: c.type || "" })));
  const rows = step.rows.map((r) => h("tr", {}, r.map((v) => h("td", {}, cellText(v)))));
  const warnings = (step.warnings || []).map((w) => h("p", { class: "alert alert-warning", role: "note" },
    h("strong", { text: "⚠ " }), w));
  return h("div", { class: "step-result", dataset: { step: step.step } }, title, stats, ...warnings,
    step.columns.length ? table(headers, rows, { className: "data-table" }) : null);
}

function transformResult(t) {
  const part = stepResult({ ...t, step: "transform" });
  part.classList.add("transform-result");
  part.querySelector("h4").textContent = "Transformation (the rows to write)";
  return part;
}

export function renderPreview(out) {
  const parts = out.steps.map(stepResult);
  const w = out.watermark;
  if (w) parts.unshift(h("p", { class: "watermark-info", text: w.error ? `@watermark: ${w.error}` :
    `@watermark = ${w.next_value ?? "the beginning"} (${w.column}, ${w.kind}; stored: ${w.stored ?? "none"})` }));
  if (out.transform) parts.push(transformResult(out.transform));
  if (out.destination) { // first: a long result table must not push it out of view
    const ok = out.destination.every((c) => c.ok);
    parts.unshift(h("div", { class: "destination-check" },
      h("h4", { text: ok ? "✓ Destination check passed" : "✕ Destination check found problems" }), renderChecks(out.destination)));
  }
  return parts;
}
