// One execution: its metrics and, for failures and partial successes, the error details:
// message, kind, stack trace and the failed rows (values, error, position, time).
import { api, query } from "./api.js";
import { renderChecks } from "./preview.js";
import { notificationsSection } from "./alerts.js";
import { progressPanel } from "./progress.js";
import { verificationSection } from "./verification.js";
import { ACTIVE, badge, cellText, clear, fmtDateTime, fmtNumber, h, pageHeader, table } from "./ui.js";

const ROWS_PAGE = 100;
const POLL_MS = 1500;

function metric(label, value) {
  return h("div", { class: "metric" }, h("dt", { text: label }), h("dd", {}, value)); // a pair per grid cell: never split
}

export async function render(main, params, ctx) {
  const executionId = params.id;
  const offset = Number(ctx.query.get("offset") || 0);
  let timer = null;
  const draw = async () => {
    const [e, errors] = await Promise.all([api.get(`/api/executions/${executionId}`),
      api.get(`/api/executions/${executionId}/errors${query({ limit: ROWS_PAGE, offset })}`)]);
    if (!ctx.alive()) return;
    const metrics = h("dl", { class: "metrics card" },
      metric("Status", badge(e.status)), metric("Trigger", e.trigger),
      metric("Attempt", [String(e.attempt), e.retry_of ? h("span", {}, " (retry of ", h("a", { href: `#/executions/${e.retry_of}`, text: `#${e.retry_of}` }), ")") : ""]),
      metric("Queued", when(e.queued_at)), metric("Started", when(e.started_at)), metric("Finished", when(e.finished_at)),
      metric("Duration", e.duration || "—"), metric("Rows read", fmtNumber(e.rows_read)),
      metric("Rows written", ACTIVE.has(e.status) ? h("span", { class: "muted", text: "none yet (staged until the commit)" }) : fmtNumber(e.rows_written)),
      metric("Inserted / updated", `${fmtNumber(e.rows_inserted)} / ${fmtNumber(e.rows_updated)}`),
      metric("Skipped / deleted", `${fmtNumber(e.rows_skipped)} / ${fmtNumber(e.rows_deleted)}`),
      metric("Rows failed", fmtNumber(e.rows_failed)), metric("Rows per second", fmtNumber(e.rows_per_second, 1)),
      metric("Rows staged", `${fmtNumber(e.rows_staged)}${["completed", "partial_success"].includes(e.status) || !e.rows_staged ? "" : e.status === "running" ? " (not committed yet)" : " (rolled back)"}`));
    const sections = [progressPanel(e), metrics].filter(Boolean);
    if (errors.message || errors.stack_trace) {
      sections.push(h("section", { class: "card error-details", "aria-labelledby": "err-h" }, h("h2", { id: "err-h", text: "Error" }),
        h("p", { class: "error-message" }, h("strong", { text: errors.kind ? `${kindLabel(errors.kind)}: ` : "" }), errors.message || ""),
        errors.stack_trace ? h("details", { open: true }, h("summary", { text: "Stack trace" }), h("pre", { class: "stack-trace", tabindex: "0", text: errors.stack_trace }))
          : errors.stack_trace_note ? h("p", { class: "muted", text: `Stack trace: ${errors.stack_trace_note}.` }) : null));
    }
    if (errors.report && errors.report.length) {
      const checks = errors.report.every((r) => r && "check" in r && "ok" in r);
      sections.push(h("section", { class: "card" }, h("h2", { text: "Report" }),
        checks ? renderChecks(errors.report) : h("pre", { class: "stack-trace", text: JSON.stringify(errors.report, null, 2) })));
    }
    if (e.verification) sections.push(verificationSection(e.verification));
    sections.push(failedRows(errors, executionId));
    if (!ACTIVE.has(e.status)) sections.push(notificationsSection(executionId));
    clear(main, pageHeader(`Execution #${e.id}${e.job_name ? ` · ${e.job_name}` : ""}`,
      h("a", { class: "btn", href: `#/history?job=${e.job_id}`, text: "Job history" }),
      h("a", { class: "btn", href: `#/jobs/${e.job_id}`, text: "Edit job" })), ...sections);
    if (ACTIVE.has(e.status)) timer = setTimeout(() => draw().catch(() => {}), POLL_MS);
  };
  await draw();
  return () => clearTimeout(timer);
}

function failedRows(errors, executionId) {
  const section = h("section", { class: "card failed-rows", "aria-labelledby": "rows-h" },
    h("h2", { id: "rows-h", text: `Failed rows (${fmtNumber(errors.failed_rows_total)})` }));
  if (!errors.failed_rows.length) {
    section.append(h("p", { class: "muted", text: errors.failed_rows_total ? "No failed rows on this page." : "No row failed." }));
    return section;
  }
  const columns = [...new Set(errors.failed_rows.flatMap((r) => Object.keys(r.values || {})))];
  const rows = errors.failed_rows.map((r) => h("tr", { class: "failed-row" },
    h("td", { class: "num", text: String(r.position) }),
    h("td", { class: "failed-error" }, r.error),
    ...columns.map((c) => h("td", {}, cellText(r.values?.[c]))),
    h("td", { text: fmtDateTime(r.at) })));
  section.append(table(["Position", "Error", ...columns, "Time"], rows, { className: "data-table" }));
  const end = errors.offset + errors.failed_rows.length;
  if (errors.offset > 0 || end < errors.failed_rows_total) {
    section.append(h("nav", { class: "pager", "aria-label": "Failed row pages" },
      h("span", { text: `${errors.offset + 1}–${end} of ${errors.failed_rows_total}` }),
      errors.offset > 0 ? h("a", { class: "btn small", href: `#/executions/${executionId}?offset=${Math.max(0, errors.offset - errors.limit)}`, text: "← Previous" }) : null,
      end < errors.failed_rows_total ? h("a", { class: "btn small", href: `#/executions/${executionId}?offset=${end}`, text: "Next →" }) : null));
  }
  return section;
}

const KINDS = { validation: "Validation failed", source: "Source error", destination: "Destination error", connection: "Connection failed",
  timeout: "Timed out", cancelled: "Cancelled", too_many_failures: "Too many failed rows", sync_delete_guard: "Sync delete stopped",
  worker_lost: "Worker lost", config: "Configuration error" };

// One prefix: the kind in words (the API drops a repeat of it from the message).
export function kindLabel(kind) {
  return KINDS[kind] || kind.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

const when = (value) => h("span", { class: "date", text: fmtDateTime(value) });
