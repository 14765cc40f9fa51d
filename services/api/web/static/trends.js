// One job's trend: the last N executions' duration and rows moved as bars, and the
// success/failure strip. Drawn as SVG with the same numbers in a table for screen readers.
import { api, query } from "./api.js";
import { badge, fmtDateTime, fmtNumber, h, statusLabel, svg } from "./ui.js";

export const RUNS = 30;
const W = 640;
const H = 120;
const GOOD = new Set(["completed"]);
const BAD = new Set(["failed", "timed_out", "cancelled"]);

function bars(values, { cls, label, unit }) {
  const max = Math.max(1, ...values.map((v) => v || 0));
  const step = W / Math.max(values.length, RUNS); // a slot per run of the last RUNS, newest on the right
  const offset = W - values.length * step;
  const g = svg("svg", { class: `trend-svg ${cls}`, viewBox: `0 0 ${W} ${H + 16}`, role: "img", "aria-label": `${label}, oldest to newest; the largest is ${fmtNumber(max, 1)} ${unit}` },
    svg("line", { x1: 0, y1: H, x2: W, y2: H, class: "trend-axis" }));
  values.forEach((v, i) => {
    const height = v ? Math.max(2, (v / max) * (H - 8)) : 0;
    g.append(svg("rect", { x: offset + i * step + 2, y: H - height, width: Math.max(2, step - 4), height, class: "trend-bar" },
      svg("title", { text: `${fmtNumber(v, 1)} ${unit}` })));
  });
  g.append(svg("text", { x: 2, y: H + 13, class: "trend-tick", text: `max ${fmtNumber(max, 1)} ${unit}` }));
  return g;
}

export async function renderTrend(jobId) {
  const page = await api.get(`/api/executions${query({ job_id: jobId, limit: RUNS })}`);
  const runs = page.items.filter((e) => !["queued", "running"].includes(e.status)).reverse(); // oldest first
  const section = h("section", { class: "card trend", "aria-labelledby": "trend-h" },
    h("h2", { id: "trend-h", text: `Last ${runs.length} execution${runs.length === 1 ? "" : "s"}: duration and rows` }));
  if (!runs.length) {
    section.append(h("p", { class: "muted", text: "No finished execution yet." }));
    return section;
  }
  const ok = runs.filter((e) => GOOD.has(e.status)).length;
  const bad = runs.filter((e) => BAD.has(e.status)).length;
  section.append(
    h("ol", { class: "strip", "aria-label": `Outcomes, oldest to newest: ${ok} completed, ${bad} failed` }, runs.map((e) =>
      h("li", { class: `strip-cell strip-${GOOD.has(e.status) ? "ok" : BAD.has(e.status) ? "bad" : "mid"}` },
        h("a", { href: `#/executions/${e.id}`, title: `#${e.id} ${statusLabel(e.status)} ${fmtDateTime(e.started_at)}`, "aria-label": `#${e.id} ${statusLabel(e.status)}` })))),
    h("p", { class: "small strip-legend", text: `${ok} completed · ${bad} failed, timed out or cancelled · ${runs.length - ok - bad} partial or skipped` }),
    h("div", { class: "grid-2" },
      h("figure", { class: "trend-fig" }, h("figcaption", { class: "small", text: "Duration (seconds)" }),
        bars(runs.map((e) => e.duration_seconds), { cls: "trend-duration", label: "Duration per execution", unit: "s" })),
      h("figure", { class: "trend-fig" }, h("figcaption", { class: "small", text: "Rows read from the source" }),
        bars(runs.map((e) => e.rows_read), { cls: "trend-rows", label: "Rows read per execution", unit: "rows" }))),
    h("details", { class: "small" }, h("summary", { text: "The numbers" }),
      h("table", { class: "trend-table" }, h("thead", {}, h("tr", {}, ["#", "Started", "Status", "Duration (s)", "Rows read", "Rows written"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, runs.map((e) => h("tr", {}, h("td", { text: `#${e.id}` }), h("td", { class: "date", text: fmtDateTime(e.started_at) }),
          h("td", {}, badge(e.status)), h("td", { class: "num", text: fmtNumber(e.duration_seconds, 1) }), h("td", { class: "num", text: fmtNumber(e.rows_read) }), h("td", { class: "num", text: fmtNumber(e.rows_written) })))))));
  return section;
}
