// History: executions of one job or all jobs, filtered by status and date range, newest
// first; rows of queued and running executions update live (polling).
import { api, query } from "./api.js";
import { progressLine } from "./progress.js";
import { renderTrend } from "./trends.js";
import { ACTIVE, STATUSES, badge, clear, errorBox, fmtDateTime, fmtNumber, go, h, pageHeader, statusLabel, table, toast } from "./ui.js";

const PAGE = 50;
const FAST_POLL_MS = 1500;
const SLOW_POLL_MS = 5000;

function filtersFrom(q) {
  return { job: q.get("job") || "", status: q.getAll("status"), from: q.get("from") || "", to: q.get("to") || "", page: Number(q.get("page") || 0) };
}

function hashFor(f) {
  return `#/history${query({ job: f.job, status: f.status, from: f.from, to: f.to, page: f.page || "" })}`;
}

function apiQuery(f) {
  const start = f.from ? new Date(`${f.from}T00:00:00`).toISOString() : "";
  const end = f.to ? new Date(`${f.to}T23:59:59.999`).toISOString() : "";
  return query({ job_id: f.job, status: f.status, start_date: start, end_date: end, limit: PAGE, offset: f.page * PAGE });
}

export async function render(main, _params, ctx) {
  const f = filtersFrom(ctx.query);
  const jobs = await api.get("/api/jobs?include_archived=true");
  if (!ctx.alive()) return;
  const job = jobs.find((j) => String(j.id) === f.job);
  const trend = job ? await renderTrend(job.id) : null;
  if (!ctx.alive()) return;
  const results = h("div", { class: "history-results" });
  const form = h("form", { class: "filters card", "aria-label": "Filters", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("div", { class: "field" }, h("label", { for: "flt-job", text: "Job" }),
      h("select", { id: "flt-job", onchange: () => apply() }, h("option", { value: "", text: "All jobs" }),
        jobs.map((j) => h("option", { value: String(j.id), selected: String(j.id) === f.job, text: j.archived ? `${j.name} (deleted)` : j.name })))),
    h("fieldset", { class: "field status-filter" }, h("legend", { text: "Status" }),
      h("div", { class: "status-options" }, STATUSES.map((s) => h("label", { class: "chip" },
        h("input", { type: "checkbox", name: "status", value: s, checked: f.status.includes(s), onchange: () => apply() }), ` ${statusLabel(s)}`)))),
    h("div", { class: "field" }, h("label", { for: "flt-from", text: "Start date" }), h("input", { id: "flt-from", type: "date", value: f.from, onchange: () => apply() })),
    h("div", { class: "field" }, h("label", { for: "flt-to", text: "End date" }), h("input", { id: "flt-to", type: "date", value: f.to, onchange: () => apply() })),
    h("div", { class: "field filter-buttons" }, h("button", { type: "submit", class: "btn", text: "Apply" }),
      h("a", { class: "btn link", href: "#/history", text: "Reset" })));
  const apply = () => {
    go(hashFor({ job: form.querySelector("#flt-job").value, status: [...form.querySelectorAll("input[name=status]:checked")].map((i) => i.value),
      from: form.querySelector("#flt-from").value, to: form.querySelector("#flt-to").value, page: 0 }));
  };
  clear(main, pageHeader(job ? `History: ${job.name}` : "Execution history",
    job && !job.archived ? h("button", { type: "button", class: "btn primary", onclick: (e) => executeNow(job, e.currentTarget) }, h("span", { "aria-hidden": "true", text: "▶ " }), "Execute") : null,
    job ? h("a", { class: "btn", href: `#/jobs/${job.id}`, text: "Edit job" }) : null), trend, form, results);

  let timer = null;
  const refresh = async () => {
    if (!ctx.alive()) return;
    let page;
    try {
      page = await api.get(`/api/executions${apiQuery(f)}`);
    } catch (err) {
      if (ctx.alive()) clear(results, errorBox(err));
      timer = setTimeout(refresh, SLOW_POLL_MS);
      return;
    }
    if (!ctx.alive()) return;
    draw(results, page, f, !job);
    timer = setTimeout(refresh, page.items.some((e) => ACTIVE.has(e.status)) ? FAST_POLL_MS : SLOW_POLL_MS);
  };
  async function executeNow(j, button) {
    button.disabled = true;
    try {
      const out = await api.post(`/api/jobs/${j.id}/execute`);
      toast(`Execution #${out.execution_id} is ${out.status}.`);
      clearTimeout(timer);
      await refresh();
    } catch (err) {
      toast(err.message, "error");
    } finally {
      button.disabled = false;
    }
  }
  await refresh();
  return () => clearTimeout(timer);
}

function draw(box, page, f, showJob) {
  if (!page.items.length) {
    clear(box, h("p", { class: "empty", text: "No executions match these filters." }));
    return;
  }
  const headers = ["#", ...(showJob ? ["Job"] : []), "Started", "Duration", "Status", "Trigger", "Rows read", "Rows written", "Rows failed", "Rows/s", "Actions"];
  const rows = page.items.map((e) => h("tr", { class: "execution-row", dataset: { executionId: e.id, status: e.status } },
    h("td", { dataset: { label: "#" } }, h("a", { href: `#/executions/${e.id}`, text: `#${e.id}` })),
    showJob ? h("td", { dataset: { label: "Job" } }, e.job_name || `job ${e.job_id}`) : null,
    h("td", { class: "date", dataset: { label: "Started" } }, e.started_at ? fmtDateTime(e.started_at, undefined, { short: true }) : h("span", { class: "muted", text: `queued ${fmtDateTime(e.queued_at, undefined, { short: true })}` })),
    h("td", { dataset: { label: "Duration" } }, e.duration || "—"),
    h("td", { dataset: { label: "Status" }, class: "status-cell" }, badge(e.status), ACTIVE.has(e.status) ? progressLine(e) : null),
    h("td", { dataset: { label: "Trigger" } }, e.trigger, e.attempt > 1 || e.retry_of
      ? h("p", { class: "muted small" }, `attempt ${e.attempt}`, e.retry_of ? [" (retry of ", h("a", { href: `#/executions/${e.retry_of}`, text: `#${e.retry_of}` }), ")"] : null) : null),
    h("td", { class: "num rows-read", dataset: { label: "Rows read" } }, fmtNumber(e.rows_read)),
    h("td", { class: "num rows-written", dataset: { label: "Rows written" } }, ACTIVE.has(e.status)
      ? h("span", { class: "muted", title: "written inside the transaction; real once it commits" }, `${fmtNumber(Math.max(e.rows_staged || 0, e.rows_written || 0))} staged`)
      : fmtNumber(e.rows_written)),
    h("td", { class: "num rows-failed", dataset: { label: "Rows failed" } }, e.rows_failed ? h("strong", { class: "text-bad", text: fmtNumber(e.rows_failed) }) : "0"),
    h("td", { class: "num", dataset: { label: "Rows/s" } }, fmtNumber(e.rows_per_second, 1)),
    h("td", { class: "row-actions", dataset: { label: "Actions" } },
      e.error || e.rows_failed
        ? h("a", { class: "btn small danger-outline", href: `#/executions/${e.id}`, "aria-label": `Error details of execution #${e.id}` }, "Error details")
        : h("a", { class: "btn small", href: `#/executions/${e.id}`, "aria-label": `Details of execution #${e.id}`, text: "Details" }),
      ACTIVE.has(e.status) && !e.cancel_requested ? h("button", { type: "button", class: "btn small", "aria-label": `Cancel execution #${e.id}`, onclick: (ev) => cancel(e, ev.currentTarget) }, "Cancel") : null)));
  const from = page.offset + 1;
  const to = page.offset + page.items.length;
  const nav = h("nav", { class: "pager", "aria-label": "Pages" },
    h("span", { text: `${from}–${to} of ${page.total}` }),
    f.page > 0 ? h("a", { class: "btn small", href: hashFor({ ...f, page: f.page - 1 }), text: "← Newer" }) : null,
    to < page.total ? h("a", { class: "btn small", href: hashFor({ ...f, page: f.page + 1 }), text: "Older →" }) : null);
  const focused = box.contains(document.activeElement) ? document.activeElement.getAttribute("aria-label") : null;
  clear(box, table(headers, rows, { className: "history-table" }), nav);
  if (focused) box.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
}

async function cancel(execution, button) {
  button.disabled = true;
  try {
    await api.post(`/api/executions/${execution.id}/cancel`);
    toast(`Cancelling execution #${execution.id}…`);
  } catch (err) {
    toast(err.message, "error");
    button.disabled = false;
  }
}
