// Overview: the last 24 hours at a glance — runs, failures, rows moved, what is running
// now (live, with its phase) and what runs next.
import { api, query } from "./api.js";
import { progressLine } from "./progress.js";
import { ACTIVE, badge, clear, fmtDateTime, fmtNumber, h, pageHeader, table } from "./ui.js";

const DAY_MS = 24 * 3600 * 1000;
const POLL_MS = 3000;
const FAILED = new Set(["failed", "timed_out", "cancelled"]);

function tile(label, value, note, cls = "") {
  return h("div", { class: `tile ${cls}`, dataset: { tile: label } }, h("p", { class: "tile-label", text: label }), h("p", { class: "tile-value", text: value }),
    note ? h("p", { class: "tile-note small muted", text: note }) : null);
}

async function load() {
  const since = new Date(Date.now() - DAY_MS).toISOString();
  const [day, running, jobs] = await Promise.all([
    api.get(`/api/executions${query({ start_date: since, limit: 500 })}`),
    api.get(`/api/executions${query({ status: ["queued", "running"], limit: 50 })}`),
    api.get("/api/jobs")]);
  return { day, running, jobs };
}

function summary({ day }) {
  const items = day.items;
  const failed = items.filter((e) => FAILED.has(e.status)).length;
  const partial = items.filter((e) => e.status === "partial_success").length;
  const rows = items.filter((e) => e.status === "completed" || e.status === "partial_success").reduce((n, e) => n + (e.rows_written || 0), 0);
  const capped = day.total > items.length ? ` (the newest ${items.length} of ${day.total})` : "";
  return h("section", { class: "tiles", "aria-label": "Last 24 hours" },
    tile("Runs", fmtNumber(day.total), `last 24 h${capped}`),
    tile("Failures", fmtNumber(failed), partial ? `and ${partial} partial successes` : "failed, timed out or cancelled", failed ? "tile-bad" : "tile-ok"),
    tile("Rows moved", fmtNumber(rows), "written by committed runs"),
    tile("Running now", fmtNumber(items.filter((e) => ACTIVE.has(e.status)).length), "queued or running"));
}

function runningNow({ running }) {
  const body = running.items.length
    ? table(["#", "Job", "Status", "Progress"], running.items.map((e) => h("tr", { class: "running-row" },
      h("td", { dataset: { label: "#" } }, h("a", { href: `#/executions/${e.id}`, text: `#${e.id}` })),
      h("td", { dataset: { label: "Job" } }, e.job_name || `job ${e.job_id}`),
      h("td", { dataset: { label: "Status" } }, badge(e.status)),
      h("td", { dataset: { label: "Progress" } }, progressLine(e)))), { className: "running-table" })
    : h("p", { class: "muted", text: "Nothing is running." });
  return h("section", { class: "card", "aria-labelledby": "now-h" }, h("h2", { id: "now-h", text: "Running now" }), body);
}

function nextRuns({ jobs }) {
  const next = jobs.filter((j) => j.enabled && j.next_run_at).sort((a, b) => a.next_run_at.localeCompare(b.next_run_at)).slice(0, 8);
  const body = next.length
    ? h("ol", { class: "next-list" }, next.map((j) => h("li", {},
      h("time", { class: "date", datetime: j.next_run_at, text: fmtDateTime(j.next_run_at) }), " ",
      h("a", { href: `#/jobs/${j.id}`, text: j.name }), h("span", { class: "muted small", text: ` · ${j.schedule_description}` }))))
    : h("p", { class: "muted", text: "No enabled job has a schedule." });
  return h("section", { class: "card", "aria-labelledby": "next-h" }, h("h2", { id: "next-h", text: "Next runs" }), body);
}

function recentFailures({ day }) {
  const bad = day.items.filter((e) => FAILED.has(e.status) || e.status === "partial_success").slice(0, 5);
  if (!bad.length) return null;
  return h("section", { class: "card", "aria-labelledby": "bad-h" }, h("h2", { id: "bad-h", text: "Recent problems" }),
    h("ul", { class: "problem-list" }, bad.map((e) => h("li", {}, badge(e.status), " ",
      h("a", { href: `#/executions/${e.id}`, text: `#${e.id} ${e.job_name || ""}` }),
      e.error ? h("span", { class: "small muted", text: ` — ${e.error.message}` }) : null))));
}

export async function render(main, _params, ctx) {
  let timer = null;
  const draw = async () => {
    const data = await load();
    if (!ctx.alive()) return;
    const active = document.activeElement;
    const focused = active && active !== main && main.contains(active) ? active.getAttribute("href") || "h1" : null;
    clear(main, pageHeader("Overview", h("a", { class: "btn", href: "#/jobs", text: "All jobs" }), h("a", { class: "btn", href: "#/history", text: "History" })),
      summary(data), h("div", { class: "grid-2 overview" }, runningNow(data), nextRuns(data)), recentFailures(data));
    if (focused) { // a refresh keeps the keyboard where it was
      const again = focused === "h1" ? null : main.querySelector(`[href="${CSS.escape(focused)}"]`);
      (again || main.querySelector("h1"))?.focus({ preventScroll: true });
    }
    timer = setTimeout(() => draw().catch(() => {}), data.running.items.length ? POLL_MS : POLL_MS * 4);
  };
  await draw();
  return () => clearTimeout(timer);
}
