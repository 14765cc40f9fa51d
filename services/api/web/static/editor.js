// Job editor (create and edit): basic information, steps, flow diagram, preview,
// destination, options, Validate and Save. API field errors appear next to their fields.
import { api, query, ApiError } from "./api.js";
import { drawFlow } from "./flow.js";
import { MODE_LABELS } from "./jobs.js";
import { renderPreview, renderChecks } from "./preview.js";
import { sqlEditor } from "./sqleditor.js";
import { clear, clearFieldErrors, debounce, errorBox, errorSummary, field, fmtDateTime, go, h, pageHeader, reveal, showFieldErrors, toast } from "./ui.js";

const MODE_HELP = {
  insert_only: "Inserts new rows; rows whose key already exists are skipped. Nothing is updated or deleted.",
  upsert: "Inserts new rows and updates existing ones by key. Needs a primary key (or key columns).",
  truncate_load: "Empties the destination table, then inserts every source row, in one transaction.",
  sync_delete: "Inserts new rows, updates existing ones, and deletes rows that are not in the source. Needs a key.",
};
const MODE_WARNINGS = {
  truncate_load: "Truncate and load deletes data: every existing row of the destination table is removed before the source rows are loaded.",
  sync_delete: "Sync with delete deletes data: destination rows whose key is not in the source result are removed.",
};
const COMMON_SCHEDULES = [
  ["0 2 * * *", "Daily at 2:00 AM"], ["0 */6 * * *", "Every 6 hours"], ["0 * * * *", "Every hour"],
  ["0 0 * * 0", "Weekly on Sunday at midnight"], ["0 0 1 * *", "Monthly on the 1st at midnight"],
];
const NO_PROJECT = 2147483647; // a project id that cannot exist: lets the flow draw a step without one
const PREVIEW_ROWS = 50;
let stepKey = 0;

function blankStep(n) {
  return { key: ++stepKey, name: `Step ${n}`, description: "", project_id: "", sql: "" };
}

const VERIFY_LEVELS = [["count", "count (default)"], ["checksum", "checksum"], ["none", "none"]];
const VERIFY_HINT = "Before committing, check the destination against what was written; a mismatch fails the run and rolls back. "
  + "count: row and key counts; checksum: also every written row's values (slower); none: no check.";

function fromJob(job) {
  const d = job.destination;
  return {
    id: job.id, name: job.name, description: job.description,
    steps: job.steps.map((s) => ({ ...s, key: ++stepKey })),
    destination: { project_id: d.project_id, table: d.table, mode: d.mode, key_columns: (d.key_columns || []).join(", "),
      allow_empty_source: d.allow_empty_source, max_delete_ratio: d.max_delete_ratio ?? "",
      allow_rounding: Boolean(d.allow_rounding) },
    schedule: job.schedule, timezone: job.timezone, max_retries: job.max_retries, timeout_minutes: job.timeout_minutes,
    enabled: job.enabled, validate_before_execution: job.validate_before_execution, transform: job.transform || "",
    verify: job.verify || "count",
    incremental: job.incremental ? JSON.stringify(job.incremental) : "", watermark: job.watermark ?? null,
  };
}

function blankJob() {
  return {
    id: null, name: "", description: "", steps: [blankStep(1)],
    destination: { project_id: "", table: "", mode: "insert_only", key_columns: "", allow_empty_source: false, max_delete_ratio: "" },
    schedule: "", timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC",
    max_retries: 3, timeout_minutes: 30, enabled: false, validate_before_execution: true, transform: "", verify: "count",
    incremental: "", watermark: null,
  };
}

const id = (v) => (v === "" || v === null || v === undefined ? null : Number(v));
const int = (v) => (v === "" || v === null ? null : Number.isFinite(Number(v)) ? Number(v) : v);

function stepsBody(state, upTo = state.steps.length) {
  return state.steps.slice(0, upTo).map((s) => ({ name: s.name, description: s.description, project_id: id(s.project_id), sql: s.sql }));
}

function destinationBody(state) {
  const d = state.destination;
  const keys = d.key_columns.split(",").map((k) => k.trim()).filter(Boolean);
  const body = { project_id: id(d.project_id), table: d.table.trim(), mode: d.mode, key_columns: keys.length ? keys : null };
  if (d.allow_rounding) body.allow_rounding = true; // set in job files or the API; kept when saved here
  if (d.mode === "sync_delete") {
    body.allow_empty_source = d.allow_empty_source;
    body.max_delete_ratio = d.max_delete_ratio === "" ? null : int(d.max_delete_ratio);
  }
  return body;
}

const transformBody = (state) => (state.transform.trim() ? state.transform : null);

function incrementalBody(state) {
  // JSON such as {"column": "updated_at", "lag": "10 minutes"}; not JSON: sent as typed, the API says why
  const text = (state.incremental || "").trim();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

function draftBody(state) {
  const body = { steps: stepsBody(state), destination: destinationBody(state), transform: transformBody(state),
    incremental: incrementalBody(state) };
  if (state.id && body.incremental) body.watermark = { value: state.watermark };
  return body;
}

function jobBody(state) {
  return {
    incremental: incrementalBody(state),
    transform: transformBody(state),
    name: state.name, description: state.description, steps: stepsBody(state), destination: destinationBody(state),
    schedule: state.schedule.trim(), timezone: state.timezone.trim(), max_retries: int(state.max_retries),
    timeout_minutes: int(state.timeout_minutes), enabled: state.enabled, validate_before_execution: state.validate_before_execution,
    verify: state.verify,
  };
}

function projectSelect(projects, value, onChange, label) {
  const select = h("select", { "aria-label": label, onchange: (e) => onChange(e.target.value) },
    h("option", { value: "", text: "Choose a project…" }),
    projects.map((p) => h("option", { value: String(p.id), selected: String(p.id) === String(value), text: `${p.name} (${p.engine})` })));
  return select;
}

// The optional transformation: SQL over @result1… run in the pipeline after the last step (issue 17).
function transformSection(state, { refreshFlow, previewTransform }) {
  const box = h("div", { class: "transform-preview", "aria-live": "polite" });
  const editor = sqlEditor({ value: state.transform, label: "Transformation SQL", onInput: (v) => { state.transform = v; refreshFlow(); } });
  return h("section", { class: "card transform", "aria-labelledby": "transform-h", dataset: { field: "transform" } },
    h("h2", { id: "transform-h", text: "Transformation (optional)" }),
    field({ label: "Transformation SQL", field: "transform", input: editor.textarea, control: editor.element,
      hint: "Runs after the last step, inside the pipeline (DuckDB SQL): read the steps' results as @result1, @result2, … and return the rows to write. Empty = write the last step's result." }),
    h("div", { class: "toolbar" },
      h("button", { type: "button", class: "btn small", id: "preview-transform", onclick: (e) => previewTransform(e.currentTarget, box) },
        h("span", { "aria-hidden": "true", text: "▷ " }), "Preview Transformation")),
    box);
}

export async function render(main, params, ctx) {
  const [projects, job] = await Promise.all([api.get("/api/projects"), params.id ? api.get(`/api/jobs/${params.id}`) : null]);
  if (!ctx.alive()) return;
  const state = job ? fromJob(job) : blankJob();
  const projectName = (pid) => projects.find((p) => String(p.id) === String(pid))?.name;
  const summary = h("div", { class: "alert alert-error summary", tabindex: "-1", role: "alert", hidden: true });
  const stepsBox = h("div", { class: "steps" });
  const flowBox = h("div", { class: "flow", "aria-live": "polite" });
  const previewBox = h("div", { class: "preview-panel", "aria-live": "polite" });
  const validateBox = h("div", { class: "validate-panel", "aria-live": "polite" });
  const modeWarning = h("div", { class: "alert alert-warning mode-warning", role: "note", hidden: true });
  const scheduleInfo = h("div", { class: "schedule-info", "aria-live": "polite" });
  const form = h("form", { class: "editor", novalidate: true, onsubmit: (e) => { e.preventDefault(); save(); } });
  let flowSeq = 0;
  let lastFlow = null;

  // ---- flow diagram ----
  const drawCurrentFlow = () => {
    if (!lastFlow) return;
    const d = state.destination;
    clear(flowBox, drawFlow(lastFlow, { table: d.table, projectName: projectName(d.project_id), modeLabel: MODE_LABELS[d.mode] },
      { sqls: state.steps.map((s) => s.sql), transform: state.transform || null, maxWidth: flowBox.clientWidth }));
  };
  const refreshFlow = debounce(async () => {
    const seq = ++flowSeq;
    const steps = state.steps.map((s, i) => ({ name: s.name.trim() || `Step ${i + 1}`, project_id: id(s.project_id) || NO_PROJECT, sql: s.sql.trim() ? s.sql : "--" }));
    try {
      const flow = await api.post("/api/jobs/flow", { steps, transform: transformBody(state) });
      if (seq !== flowSeq || !ctx.alive()) return;
      flow.nodes.forEach((n, i) => { if (!id(state.steps[i].project_id)) n.project_name = null; });
      lastFlow = flow;
      drawCurrentFlow();
    } catch (err) {
      if (seq === flowSeq && ctx.alive()) clear(flowBox, h("p", { class: "muted", text: `The diagram cannot be drawn yet: ${err.message}` }));
    }
  }, 350);

  // ---- steps ----
  const renderSteps = (...focusSelectors) => {
    clear(stepsBox, state.steps.map((step, i) => stepCard(step, i)));
    focusSelectors.map((sel) => form.querySelector(sel)).find(Boolean)?.focus();
    refreshFlow();
  };
  const move = (i, delta) => {
    const [step] = state.steps.splice(i, 1);
    state.steps.splice(i + delta, 0, step);
    const own = `[data-step-key="${step.key}"]`;
    renderSteps(`${own} [data-move="${delta < 0 ? "up" : "down"}"]:not(:disabled)`, `${own} [data-move]:not(:disabled)`);
  };
  const stepCard = (step, i) => {
    const n = i + 1;
    const result = h("div", { class: "step-preview", "aria-live": "polite" });
    const refs = n > 1 ? `Earlier results: ${Array.from({ length: n - 1 }, (_, k) => `@result${k + 1}`).join(", ")}.` : "The first step reads only its own database.";
    const editor = sqlEditor({ value: step.sql, label: `SQL query of step ${n}`, onInput: (v) => { step.sql = v; refreshFlow(); } });
    const card = h("fieldset", { class: "card step", dataset: { stepKey: step.key, field: `steps.${i}` } },
      h("legend", {}, `Step ${n} `, h("span", { class: "muted small", text: `(its result is @result${n})` })),
      h("div", { class: "grid-2" },
        field({ label: "Step name", field: `steps.${i}.name`, input: h("input", { type: "text", value: step.name, required: true, maxlength: "200",
          oninput: (e) => { step.name = e.target.value; refreshFlow(); } }) }),
        field({ label: "Project", field: `steps.${i}.project_id`,
          input: projectSelect(projects, step.project_id, (v) => { step.project_id = v; refreshFlow(); }, null) })),
      field({ label: "Description", field: `steps.${i}.description`, input: h("input", { type: "text", value: step.description, maxlength: "2000",
        oninput: (e) => { step.description = e.target.value; } }) }),
      field({ label: "SQL query", field: `steps.${i}.sql`, hint: `A SELECT query. ${refs}`, input: editor.textarea, control: editor.element }),
      h("div", { class: "step-actions" },
        h("button", { type: "button", class: "btn small", onclick: () => previewStep(i, result) }, h("span", { "aria-hidden": "true", text: "▷ " }), "Preview Query"),
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "btn small", dataset: { move: "up" }, disabled: i === 0, "aria-label": `Move step ${n} up`, onclick: () => move(i, -1) }, "↑ Up"),
        h("button", { type: "button", class: "btn small", dataset: { move: "down" }, disabled: i === state.steps.length - 1, "aria-label": `Move step ${n} down`, onclick: () => move(i, 1) }, "↓ Down"),
        h("button", { type: "button", class: "btn small danger", disabled: state.steps.length === 1, "aria-label": `Remove step ${n}`,
          onclick: () => { state.steps.splice(i, 1); renderSteps(".add-step"); } }, "Remove")),
      result);
    return card;
  };

  // ---- preview, validate, save ----
  const handleError = (err, box) => {
    if (err instanceof ApiError && err.fieldErrors.length) {
      const unplaced = showFieldErrors(form, err.fieldErrors);
      errorSummary(summary, err.fieldErrors, unplaced.length ? "Please fix these problems" : "Please fix the problems marked below");
      if (box) clear(box);
    } else if (box) clear(box, errorBox(err));
    else toast(err.message, "error");
  };
  const busy = async (button, fn) => {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try { await fn(); } finally { button.disabled = false; button.removeAttribute("aria-busy"); }
  };
  async function previewStep(i, box) {
    clear(box, h("p", { class: "muted", text: "Running the query…" }));
    try {
      const out = await api.post(`/api/jobs/preview${query({ limit: PREVIEW_ROWS })}`, { steps: stepsBody(state, i + 1) });
      clearFieldErrors(form);
      errorSummary(summary, []);
      const upstreamErrors = out.steps.slice(0, i).filter((s) => s.error);
      clear(box, renderPreview({ steps: [...upstreamErrors, out.steps[i]].filter(Boolean), destination: null }));
    } catch (err) {
      handleError(err, box);
    }
    reveal(box);
  }
  async function previewTransform(button, box) {
    await busy(button, async () => {
      clear(box, h("p", { class: "muted", text: "Running the steps and the transformation…" }));
      try {
        const out = await api.post(`/api/jobs/preview${query({ limit: PREVIEW_ROWS })}`, { steps: stepsBody(state), transform: transformBody(state) });
        clearFieldErrors(form);
        errorSummary(summary, []);
        clear(box, renderPreview({ steps: out.steps.filter((s) => s.error), transform: out.transform, destination: null }));
      } catch (err) {
        handleError(err, box);
      }
    });
  }
  async function previewJob(button) {
    await busy(button, async () => {
      clear(previewBox, h("p", { class: "muted", text: "Running every step…" }));
      try {
        const out = await api.post(`/api/jobs/preview${query({ limit: PREVIEW_ROWS })}`, draftBody(state));
        clearFieldErrors(form);
        errorSummary(summary, []);
        clear(previewBox, renderPreview(out));
      } catch (err) {
        handleError(err, previewBox);
      }
      reveal(previewBox);
    });
  }
  async function validate(button) {
    await busy(button, async () => {
      clear(validateBox, h("p", { class: "muted", text: "Checking…" }));
      try {
        const out = await api.post("/api/jobs/validate", draftBody(state));
        clearFieldErrors(form);
        errorSummary(summary, []);
        clear(validateBox, h("h3", { text: out.ok ? "✓ Every check passed" : "✕ Some checks failed" }), renderChecks(out.checks));
      } catch (err) {
        handleError(err, validateBox);
      }
      reveal(validateBox);
    });
  }
  async function save() {
    const button = form.querySelector("#save-job");
    await busy(button, async () => {
      try {
        const saved = state.id ? await api.put(`/api/jobs/${state.id}`, jobBody(state)) : await api.post("/api/jobs", jobBody(state));
        toast(`Saved “${saved.name}”.`);
        go("#/jobs");
      } catch (err) {
        handleError(err, null);
      }
    });
  }

  // ---- destination and options ----
  const updateMode = () => {
    const mode = state.destination.mode;
    modeWarning.hidden = !MODE_WARNINGS[mode];
    clear(modeWarning, MODE_WARNINGS[mode] ? [h("strong", { text: "Warning: " }), MODE_WARNINGS[mode]] : []);
    form.querySelector("#mode-help").textContent = MODE_HELP[mode];
    form.querySelectorAll(".needs-key").forEach((n) => { n.hidden = !(mode === "upsert" || mode === "sync_delete"); });
    form.querySelectorAll(".sync-only").forEach((n) => { n.hidden = mode !== "sync_delete"; });
    drawCurrentFlow();
  };
  const refreshSchedule = debounce(async () => {
    const tz = state.timezone.trim() || "UTC";
    try {
      const out = await api.get(`/api/schedule/preview${query({ schedule: state.schedule.trim(), timezone: tz })}`);
      if (!ctx.alive()) return;
      clear(scheduleInfo, h("p", { class: "schedule-description" }, h("strong", { text: out.description })),
        out.next_runs.length ? [h("p", { class: "small", text: `Next five runs (${out.timezone}):` }),
          h("ol", { class: "next-runs small" }, out.next_runs.map((r) => h("li", {}, h("time", { datetime: r, text: fmtDateTime(r, out.timezone) }))))] : null);
    } catch (err) {
      if (ctx.alive()) clear(scheduleInfo, h("p", { class: "field-error" }, h("span", { "aria-hidden": "true", text: "⚠ " }), err.message.replace(/^(schedule|timezone): /, "")));
    }
  }, 300);
  const d = state.destination;
  const bind = (obj, key, transform = (v) => v) => (e) => { obj[key] = transform(e.target.type === "checkbox" ? e.target.checked : e.target.value); };
  const zones = (() => { try { return Intl.supportedValuesOf("timeZone"); } catch { return ["UTC"]; } })();

  clear(form,
    summary,
    h("section", { class: "card", "aria-labelledby": "basic-h" }, h("h2", { id: "basic-h", text: "Basic information" }),
      field({ label: "Name (required)", field: "name", input: h("input", { type: "text", value: state.name, maxlength: "200", placeholder: "Daily User Sync", oninput: bind(state, "name") }) }),
      field({ label: "Description", field: "description", input: h("textarea", { rows: "2", maxlength: "5000", text: state.description, placeholder: "Sync active users to the analytics database", oninput: bind(state, "description") }) })),
    h("section", { class: "section", "aria-labelledby": "steps-h", dataset: { field: "steps" } },
      h("div", { class: "section-header" }, h("h2", { id: "steps-h", text: "Source query steps" }),
        h("p", { class: "muted small", text: "Each step runs on its own project; a later step can join an earlier step's result as @result1, @result2, …" })),
      stepsBox,
      h("button", { type: "button", class: "btn add-step", onclick: () => { state.steps.push(blankStep(state.steps.length + 1)); renderSteps(`[data-step-key="${stepKey}"] input`); } },
        h("span", { "aria-hidden": "true", text: "+ " }), "Add Query Step")),
    transformSection(state, { refreshFlow, previewTransform }),
    h("section", { class: "card", "aria-labelledby": "flow-h" }, h("h2", { id: "flow-h", text: "Flow" }), flowBox),
    h("section", { class: "card", "aria-labelledby": "dest-h", dataset: { field: "destination" } }, h("h2", { id: "dest-h", text: "Destination" }),
      h("div", { class: "grid-3" },
        field({ label: "Destination project", field: "destination.project_id", input: projectSelect(projects, d.project_id, (v) => { d.project_id = v; drawCurrentFlow(); }, null) }),
        field({ label: "Destination table", field: "destination.table", hint: "table or schema.table", input: h("input", { type: "text", value: d.table, placeholder: "user_summary", oninput: (e) => { d.table = e.target.value; drawCurrentFlow(); } }) }),
        field({ label: "Migration mode", field: "destination.mode", input: h("select", { onchange: (e) => { d.mode = e.target.value; updateMode(); } },
          Object.entries(MODE_LABELS).map(([value, label]) => h("option", { value, selected: value === d.mode, text: label }))) })),
      h("p", { class: "small", id: "mode-help" }),
      modeWarning,
      h("div", { class: "grid-3" },
        field({ label: "Key columns (optional)", field: "destination.key_columns", className: "needs-key", hint: "Comma-separated; empty = the table's primary key",
          input: h("input", { type: "text", value: d.key_columns, oninput: bind(d, "key_columns") }) }),
        field({ label: "Most rows a run may delete (0–1, optional)", field: "destination.max_delete_ratio", className: "sync-only", hint: "e.g. 0.1 stops (and rolls back) a run that would delete more than 10%",
          input: h("input", { type: "number", min: "0", max: "1", step: "0.01", value: d.max_delete_ratio, oninput: bind(d, "max_delete_ratio") }) }),
        h("div", { class: "field check sync-only", dataset: { field: "destination.allow_empty_source" } },
          h("label", {}, h("input", { type: "checkbox", checked: d.allow_empty_source, onchange: bind(d, "allow_empty_source") }), " Allow an empty source to delete every row"))),
      h("div", { class: "toolbar" },
        h("button", { type: "button", class: "btn", id: "preview-job", onclick: (e) => previewJob(e.currentTarget) }, h("span", { "aria-hidden": "true", text: "▷ " }), "Preview Query"),
        h("span", { class: "muted small", text: `Runs every step (first ${PREVIEW_ROWS} rows) and checks the destination table. Nothing is written.` })),
      previewBox),
    h("section", { class: "card", "aria-labelledby": "opt-h" }, h("h2", { id: "opt-h", text: "Execution options" }),
      h("div", { class: "grid-2" },
        h("div", {},
          field({ label: "Schedule (cron)", field: "schedule", hint: "5 fields: minute hour day-of-month month day-of-week. Empty = manual only (default).",
            input: h("input", { type: "text", value: state.schedule, list: "common-schedules", placeholder: "0 2 * * *", class: "mono",
              oninput: (e) => { state.schedule = e.target.value; refreshSchedule(); } }) }),
          h("datalist", { id: "common-schedules" }, COMMON_SCHEDULES.map(([value, label]) => h("option", { value, label }))),
          scheduleInfo),
        field({ label: "Time zone", field: "timezone", hint: "IANA name; the schedule runs in this zone's wall-clock time. Default UTC.",
          input: h("input", { type: "text", value: state.timezone, list: "time-zones", oninput: (e) => { state.timezone = e.target.value; refreshSchedule(); } }) }),
        h("datalist", { id: "time-zones" }, ["UTC", ...zones].map((z) => h("option", { value: z })))),
      h("div", { class: "grid-2" },
        field({ label: "Max retries", field: "max_retries", hint: "0–10, default 3", input: h("input", { type: "number", min: "0", max: "10", step: "1", value: String(state.max_retries), oninput: bind(state, "max_retries") }) }),
        field({ label: "Timeout (minutes)", field: "timeout_minutes", hint: "1–1440, default 30", input: h("input", { type: "number", min: "1", max: "1440", step: "1", value: String(state.timeout_minutes), oninput: bind(state, "timeout_minutes") }) })),
      h("div", { class: "field check", dataset: { field: "enabled" } },
        h("label", {}, h("input", { type: "checkbox", role: "switch", checked: state.enabled, onchange: bind(state, "enabled") }), " Enabled"),
        h("p", { class: "hint", text: "Run automatically on the schedule (default off). Manual execution always works." })),
      field({ label: "Incremental", field: "incremental",
        hint: `JSON {"column", "initial", "lag", "include_nulls"}; the SQL uses @watermark. Empty = every run reads everything.` +
          (state.id && state.incremental ? ` Stored watermark: ${state.watermark ?? "none (next run starts from initial)"}.` : ""),
        input: h("input", { type: "text", class: "mono", value: state.incremental, placeholder: '{"column": "updated_at", "lag": "10 minutes"}',
          oninput: bind(state, "incremental") }) }),
      h("div", { class: "field check", dataset: { field: "validate_before_execution" } },
        h("label", {}, h("input", { type: "checkbox", checked: state.validate_before_execution, onchange: bind(state, "validate_before_execution") }), " Validate before execution"),
        h("p", { class: "hint", text: "Check the queries and the destination table before each run (default on)." })),
      field({ label: "Verify before commit", field: "verify", hint: VERIFY_HINT, input: h("select", { onchange: bind(state, "verify") },
        VERIFY_LEVELS.map(([value, text]) => h("option", { value, text, selected: state.verify === value }))) })),
    validateBox,
    h("div", { class: "action-bar" },
      h("button", { type: "button", class: "btn", id: "validate-job", onclick: (e) => validate(e.currentTarget) }, "Validate"),
      h("button", { type: "submit", class: "btn primary", id: "save-job" }, "Save"),
      h("a", { class: "btn link", href: "#/jobs", text: "Cancel" })));

  const title = state.id ? `Edit job: ${state.name}` : "Create New Migration Job";
  clear(main, pageHeader(title, state.id ? h("a", { class: "btn", href: `#/history?job=${state.id}`, text: "History" }) : null), form);
  renderSteps();
  updateMode();
  refreshSchedule();
}
