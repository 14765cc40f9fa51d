// Jobs: every job with its projects, table, schedule, last status, enabled switch and actions.
import { api, query } from "./api.js";
import { progressLine } from "./progress.js";
import { ACTIVE, badge, clear, confirmDialog, errorBox, h, pageHeader, statusLabel, table, toast, go } from "./ui.js";

export const MODE_LABELS = {
  insert_only: "Insert only",
  upsert: "Upsert",
  truncate_load: "Truncate and load",
  sync_delete: "Sync with delete",
};

const POLL_MS = 1500;

export async function render(main, _params, ctx) {
  const [jobs, projects] = await Promise.all([api.get("/api/jobs"), api.get("/api/projects")]);
  if (!ctx.alive()) return;
  const names = new Map(projects.map((p) => [p.id, p.name]));
  const projectName = (id) => names.get(id) || `project ${id} (missing)`;
  const create = h("a", { class: "btn primary", href: "#/jobs/new" }, h("span", { "aria-hidden": "true", text: "+ " }), "Create New Migration Job");
  const notice = h("div", { class: "notice-slot" });
  const live = liveStatus(ctx);
  const body = jobs.length
    ? table(["Job", "Source → destination", "Schedule", "Last execution", "Enabled", "Actions"],
      jobs.map((job) => row(job, projectName, notice, live)), { className: "jobs-table" })
    : h("div", { class: "empty" }, h("p", { text: "No migration jobs yet." }),
      projects.length ? h("p", { text: "Create one to copy the result of your SQL steps into a destination table." })
        : h("p", {}, "Start by adding a ", h("a", { href: "#/projects/new", text: "project (a database connection)" }), ", then create a job."));
  clear(main, pageHeader("Migration jobs", create), notice, body);
  live.poll();
  return live.stop;
}

// The "Last execution" cells follow the executions live while any is queued or running.
function liveStatus(ctx) {
  const cells = new Map(); // job id -> {job, cell}
  let timer = null;
  let soon = false;
  const paint = (entry, execution) => {
    const { job, cell } = entry;
    const status = execution ? execution.status : job.last_status;
    const id = execution ? execution.id : job.last_execution_id;
    const feedback = cell.querySelector(".row-feedback");
    clear(cell, lastLink(job, status, id),
      execution && ACTIVE.has(execution.status) ? progressLine(execution) : null, feedback);
  };
  const tick = async () => {
    if (!ctx.alive()) return;
    let active = false;
    try {
      const [jobs, running] = await Promise.all([api.get("/api/jobs"),
        api.get(`/api/executions${query({ status: ["queued", "running"], limit: 200 })}`)]);
      if (!ctx.alive()) return;
      const byId = new Map(running.items.map((e) => [e.id, e]));
      for (const job of jobs) {
        const entry = cells.get(job.id);
        if (!entry) continue;
        entry.job = { ...entry.job, last_status: job.last_status, last_execution_id: job.last_execution_id };
        const execution = byId.get(job.last_execution_id) || null;
        active = active || ACTIVE.has(job.last_status);
        paint(entry, execution);
      }
    } catch { /* the next tick tries again */ }
    if (ctx.alive() && (active || soon)) timer = setTimeout(tick, POLL_MS);
    soon = false;
  };
  return {
    add(job, cell) { cells.set(job.id, { job, cell }); },
    poll() { if ([...cells.values()].some((e) => ACTIVE.has(e.job.last_status))) tick(); },
    now() { clearTimeout(timer); soon = true; tick(); },
    stop() { clearTimeout(timer); },
  };
}

// The status badge, linked to the execution; its name starts with the words it shows.
function lastLink(job, status, id) {
  if (!id) return badge(null);
  return h("a", { href: `#/executions/${id}`, "aria-label": `${statusLabel(status)}: last execution #${id} of ${job.name}` }, badge(status));
}

function row(job, projectName, notice, live) {
  const sources = [...new Set(job.steps.map((s) => projectName(s.project_id)))];
  const stateText = h("span", { class: "switch-text", "aria-hidden": "true", text: job.enabled ? "On" : "Off" });
  const disable = h("button", { type: "button", class: "btn small", "aria-label": `${job.enabled ? "Disable" : "Enable"} ${job.name}` }, job.enabled ? "Disable" : "Enable");
  const enabled = h("input", { type: "checkbox", role: "switch", class: "switch", checked: job.enabled,
    "aria-label": `Enabled: ${job.name}`, onchange: (e) => toggle(job, e.target, stateText, disable) });
  disable.addEventListener("click", () => { enabled.checked = !enabled.checked; toggle(job, enabled, stateText, disable); });
  const history = `#/history?job=${job.id}`;
  const lastCell = h("td", { class: "last-cell", dataset: { label: "Last execution" } });
  live.add(job, lastCell);
  lastCell.append(lastLink(job, job.last_status, job.last_execution_id));
  const icon = (t) => h("span", { "aria-hidden": "true", text: t });
  return h("tr", { dataset: { jobId: job.id }, class: "job-row" },
    h("td", { dataset: { label: "Job" } }, h("a", { class: "job-name", href: `#/jobs/${job.id}`, text: job.name }),
      job.description ? h("p", { class: "muted small", text: job.description }) : null),
    h("td", { dataset: { label: "Source → destination" } }, `${sources.join(", ")} → ${projectName(job.destination.project_id)}`,
      h("p", { class: "small" }, h("code", { text: job.destination.table }), " ",
        h("span", { class: "muted", text: `${MODE_LABELS[job.destination.mode] || job.destination.mode} · ${job.steps.length} step${job.steps.length === 1 ? "" : "s"}` }))),
    h("td", { dataset: { label: "Schedule" } }, job.schedule
      ? [h("code", { text: job.schedule }), h("p", { class: "small", text: `${job.schedule_description} (${job.timezone})` })]
      : h("span", { class: "muted", text: "Manual only" })),
    lastCell,
    h("td", { dataset: { label: "Enabled" } }, h("label", { class: "switch-label" }, enabled, stateText)),
    h("td", { class: "row-actions", dataset: { label: "Actions" } },
      h("div", { class: "action-grid" },
        h("button", { type: "button", class: "btn small primary", "aria-label": `Execute ${job.name}`,
          onclick: (e) => execute(job, e.currentTarget, lastCell, live) }, icon("▶ "), "Execute"),
        h("a", { class: "btn small", href: `#/jobs/${job.id}`, "aria-label": `Edit ${job.name}` }, icon("✎ "), "Edit"),
        h("a", { class: "btn small", href: history, "aria-label": `History of ${job.name}` }, icon("◷ "), "History"),
        h("button", { type: "button", class: "btn small", "aria-label": `Compare ${job.name} with its destination`,
          onclick: (e) => compare(job, e.currentTarget, notice) }, icon("≟ "), "Compare"),
        disable,
        h("button", { type: "button", class: "btn small danger", "aria-label": `Delete ${job.name}`, onclick: () => archive(job) },
          "Delete"))));
}

async function toggle(job, input, stateText, disable) {
  input.disabled = true;
  try {
    const saved = await api.patch(`/api/jobs/${job.id}`, { enabled: input.checked });
    job.enabled = saved.enabled;
    toast(`${job.name} is ${saved.enabled ? "enabled" : "disabled"}${saved.enabled && !saved.schedule ? " (it has no schedule, so it runs only when executed)" : ""}.`);
  } catch (err) {
    input.checked = job.enabled;
    toast(`Could not change ${job.name}: ${err.message}`, "error");
  } finally {
    input.disabled = false;
    stateText.textContent = input.checked ? "On" : "Off";
    disable.textContent = job.enabled ? "Disable" : "Enable";
    disable.setAttribute("aria-label", `${job.enabled ? "Disable" : "Enable"} ${job.name}`);
  }
}

// Feedback where the user clicked: in the job's row, next to its live status.
async function execute(job, button, cell, live) {
  button.disabled = true;
  const say = (...content) => {
    cell.querySelector(".row-feedback")?.remove();
    const box = h("div", { class: "row-feedback small", role: "status" }, ...content);
    cell.append(box);
    return box;
  };
  try {
    const out = await api.post(`/api/jobs/${job.id}/execute`);
    say(`Execution #${out.execution_id} is ${out.status}. `, h("a", { href: `#/history?job=${job.id}`, text: "Watch it in the history" }));
    live.now();
  } catch (err) {
    say(h("span", { class: "text-bad", text: `✕ ${err.message}` }));
  } finally {
    button.disabled = false;
  }
}

// Compare: the job's result against its destination table (read-only), shown above the list.
async function compare(job, button, notice) {
  button.disabled = true;
  clear(notice, h("div", { class: "alert", role: "status", text: `Comparing “${job.name}” with its destination…` }));
  try {
    const out = await api.post(`/api/jobs/${job.id}/compare`, { limit: 20 });
    const counts = out.only_in_source === null ? "" : ` Only in source ${out.only_in_source}, only in destination ${out.only_in_destination}, different ${out.different}.`;
    const text = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));
    const values = (side, cols) => (side ? cols.map((c) => `${c}=${text(side[c])}`).join(", ") : "–");
    const rows = out.samples.map((s) => h("tr", {},
      h("td", { text: Object.entries(s.key).map(([k, v]) => `${k}=${text(v)}`).join(", ") }),
      h("td", { text: s.destination === null ? "only in source" : s.source === null ? "only in destination" : "different" }),
      h("td", { text: s.columns.join(", ") }), h("td", { text: values(s.source, s.columns) }),
      h("td", { text: values(s.destination, s.columns) })));
    clear(notice, h("div", { class: `alert ${out.equal ? "alert-ok" : "alert-error"}`, role: "status" },
      h("strong", { text: out.equal ? "Equal. " : "Different. " }),
      `“${job.name}”: source rows ${out.source_rows}, destination rows ${out.destination_rows}.${counts} (${out.seconds} s)`,
      out.note ? h("p", { class: "small", text: out.note }) : null,
      rows.length ? table(["Key", "What", "Columns", "Source", "Destination"], rows, { caption: "Differing rows (first 20)" }) : null));
  } catch (err) {
    clear(notice, errorBox(err));
  } finally {
    button.disabled = false;
  }
}

async function archive(job) {
  const ok = await confirmDialog({
    title: `Delete “${job.name}”?`,
    text: "The job is archived: it stops running on its schedule and leaves this list. Its execution history is kept.",
    confirm: "Delete job",
  });
  if (!ok) return;
  try {
    await api.del(`/api/jobs/${job.id}`);
    toast(`“${job.name}” was deleted (archived); its history is kept.`);
    go("#/jobs");
  } catch (err) {
    toast(`Could not delete ${job.name}: ${err.message}`, "error");
  }
}
