// Projects: named database connections. List, create, edit (the password is write-only:
// it is never shown, and an empty password field keeps the stored one) and Test connection.
import { api, ApiError } from "./api.js";
import { clear, confirmDialog, errorSummary, field, go, h, pageHeader, showFieldErrors, table, toast } from "./ui.js";

const ENGINES = [["postgresql", "PostgreSQL", 5432], ["mysql", "MySQL / MariaDB", 3306], ["mssql", "SQL Server", 1433], ["sqlite", "SQLite", null]];

export async function render(main, params, ctx) {
  if (params.path.endsWith("/new") || params.id) return renderForm(main, params, ctx);
  const projects = await api.get("/api/projects");
  if (!ctx.alive()) return;
  const add = h("a", { class: "btn primary", href: "#/projects/new" }, h("span", { "aria-hidden": "true", text: "+ " }), "New project");
  const body = projects.length
    ? table(["Name", "Engine", "Connection", "Password", "Actions", "Connection test"], projects.map(row), { className: "projects-table" })
    : h("p", { class: "empty", text: "No projects yet. A project is a database connection that steps read from and destinations write to." });
  clear(main, pageHeader("Projects", add), body);
}

function connectionText(p) {
  if (p.url) return p.url;
  const host = p.host ? `${p.username ? `${p.username}@` : ""}${p.host}${p.port ? `:${p.port}` : ""}/` : "";
  return `${host}${p.database || ""}`;
}

function row(p) {
  const result = h("span", { class: "test-result", role: "status" });
  return h("tr", { class: "project-row", dataset: { projectId: p.id } },
    h("td", { dataset: { label: "Name" } }, h("a", { href: `#/projects/${p.id}`, text: p.name })),
    h("td", { dataset: { label: "Engine" } }, (ENGINES.find((e) => e[0] === p.engine) || [p.engine, p.engine])[1]),
    h("td", { dataset: { label: "Connection" } }, h("code", { class: "wrap", text: connectionText(p) })),
    h("td", { dataset: { label: "Password" } }, p.has_password ? "set (hidden)" : "none"),
    h("td", { class: "row-actions", dataset: { label: "Actions" } },
      h("button", { type: "button", class: "btn small", "aria-label": `Test connection of ${p.name}`, onclick: (e) => testConnection(p, e.currentTarget, result) }, "Test connection"),
      h("a", { class: "btn small", href: `#/projects/${p.id}`, "aria-label": `Edit ${p.name}`, text: "Edit" }),
      h("button", { type: "button", class: "btn small danger", "aria-label": `Delete ${p.name}`, onclick: () => remove(p) }, "Delete")),
    h("td", { dataset: { label: "Connection test" } }, result));
}

export async function testConnection(project, button, out, call = () => api.post(`/api/projects/${project.id}/test`)) {
  button.disabled = true;
  let result = null;
  clear(out, "Testing…");
  try {
    const r = await call();
    out.className = `test-result ${r.ok ? "text-ok" : "text-bad"}`;
    clear(out, r.ok ? `✓ Connected (${r.elapsed_ms} ms)` : `✕ Failed: ${r.message}`);
    result = r;
    if (r.ok && r.privileges && r.privileges.message) {  // a source role that is not read-only
      out.append(h("span", { class: "privileges-warning text-bad", role: "note" }, ` ⚠ ${r.privileges.message}`));
    }
  } catch (err) {
    out.className = "test-result text-bad";
    clear(out, `✕ ${err.message}`);
    result = { ok: false, message: err.message };
  } finally {
    button.disabled = false;
  }
  return result;
}

async function remove(p) {
  const ok = await confirmDialog({ title: `Delete project “${p.name}”?`, text: "The connection settings are removed. A project that a job still uses cannot be deleted.", confirm: "Delete project" });
  if (!ok) return;
  try {
    await api.del(`/api/projects/${p.id}`);
    toast(`Project “${p.name}” deleted.`);
    go("#/projects");
  } catch (err) {
    toast(`Could not delete “${p.name}”: ${err.message}`, "error");
  }
}

async function renderForm(main, params, ctx) {
  const project = params.id ? await api.get(`/api/projects/${params.id}`) : null;
  if (!ctx.alive()) return;
  const p = project || { name: "", engine: "postgresql", url: null, host: "", port: null, database: "", username: "", options: {}, has_password: false };
  const summary = h("div", { class: "alert alert-error summary", tabindex: "-1", role: "alert", hidden: true });
  const input = (attrs) => h("input", { type: "text", ...attrs });
  const els = {
    name: input({ value: p.name, maxlength: "200", placeholder: "Production PostgreSQL" }),
    engine: h("select", {}, ENGINES.map(([v, label]) => h("option", { value: v, selected: v === p.engine, text: label }))),
    host: input({ value: p.host || "", placeholder: "db.example.com" }),
    port: h("input", { type: "number", min: "1", max: "65535", value: p.port ?? "" }),
    database: input({ value: p.database || "" }),
    username: input({ value: p.username || "", autocomplete: "off" }),
    password: h("input", { type: "password", autocomplete: "new-password", value: "" }),
    url: input({ value: p.url || "", class: "mono", placeholder: "postgresql://user@host:5432/db" }),
    options: h("textarea", { rows: "2", class: "mono", text: Object.entries(p.options || {}).map(([k, v]) => `${k}=${v}`).join("\n"), placeholder: "sslmode=require" }),
  };
  const byUrl = h("input", { type: "radio", name: "form", value: "url", checked: Boolean(p.url) });
  const byHost = h("input", { type: "radio", name: "form", value: "host", checked: !p.url });
  const serverFields = [field({ label: "Host", field: "host", input: els.host }),
    field({ label: "Port", field: "port", input: els.port, hint: "empty = the engine's default" })];
  const userField = field({ label: "Username", field: "username", input: els.username });
  const hostPart = h("div", { class: "grid-3" }, serverFields, field({ label: "Database", field: "database", input: els.database }), userField);
  const urlPart = field({ label: "Connection URL", field: "url", input: els.url, hint: "SQLAlchemy form, e.g. mysql://user@host:3306/db; a password in it is stored encrypted and never shown again" });
  const passwordHint = p.has_password ? "A password is stored (never shown). Leave empty to keep it; type a new one to replace it." : "Stored encrypted; it is never shown again.";
  const testOut = h("span", { class: "test-result", role: "status" });
  const sync = () => {
    hostPart.hidden = byUrl.checked;
    urlPart.hidden = !byUrl.checked;
    const engine = ENGINES.find((e) => e[0] === els.engine.value);
    els.port.placeholder = engine && engine[2] ? String(engine[2]) : "";
    [...serverFields, userField].forEach((f) => { f.hidden = els.engine.value === "sqlite"; });
    els.database.previousElementSibling.textContent = els.engine.value === "sqlite" ? "Database file path" : "Database";
  };
  [byUrl, byHost, els.engine].forEach((el) => el.addEventListener("change", sync));
  const body = () => {
    const options = Object.fromEntries(els.options.value.split("\n").map((l) => l.trim()).filter(Boolean)
      .map((l) => [l.split("=")[0].trim(), l.split("=").slice(1).join("=").trim()]));
    const out = { name: els.name.value, options };
    if (byUrl.checked) out.url = els.url.value.trim();
    else {
      out.engine = els.engine.value;
      for (const k of ["host", "database", "username"]) if (els[k].value.trim()) out[k] = els[k].value.trim();
      if (els.port.value) out.port = Number(els.port.value);
    }
    if (els.password.value) out.password = els.password.value;
    return out;
  };
  let lastTest = null; // the form's settings when Test connection last failed, and why
  const testDraft = async (button) => {
    const settings = JSON.stringify(body());
    const r = await testConnection(project, button, testOut,
      () => api.post(project ? `/api/projects/test?project_id=${project.id}` : "/api/projects/test", body()));
    lastTest = r && !r.ok ? { settings, message: r.message } : null;
  };
  // Saving settings whose test just failed is allowed, but only on purpose.
  const confirmFailedTest = async () => {
    if (!lastTest || lastTest.settings !== JSON.stringify(body())) return true;
    return confirmDialog({ title: "Save settings whose connection test failed?",
      text: `Test connection failed: ${lastTest.message}. Jobs that use this project will fail until it connects.`, confirm: "Save anyway" });
  };
  const form = h("form", { class: "card project-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    if (!(await confirmFailedTest())) return;
    const button = form.querySelector("#save-project");
    button.disabled = true;
    try {
      const saved = project ? await api.put(`/api/projects/${project.id}`, body()) : await api.post("/api/projects", body());
      toast(`Saved project “${saved.name}”.`);
      go("#/projects");
    } catch (err) {
      const errors = err instanceof ApiError && err.fieldErrors.length ? err.fieldErrors : [{ field: "", msg: err.message }];
      showFieldErrors(form, errors);
      errorSummary(summary, errors);
    } finally {
      button.disabled = false;
    }
  } },
  summary,
  field({ label: "Name (required)", field: "name", input: els.name }),
  field({ label: "Engine", field: "engine", input: els.engine, hint: "With a URL, the engine comes from the URL." }),
  h("fieldset", { class: "field" }, h("legend", { text: "Connect with" }),
    h("div", { class: "status-options" }, h("label", { class: "chip" }, byHost, " Host and database"), h("label", { class: "chip" }, byUrl, " Connection URL"))),
  hostPart, urlPart,
  field({ label: "Password", field: "password", input: els.password, hint: passwordHint }),
  field({ label: "Options (one key=value a line)", field: "options", input: els.options, hint: "TLS, timeouts, application name (the README lists what each engine allows); secret values show as *** and are kept while left as ***" }),
  h("div", { class: "action-bar" },
    h("button", { type: "submit", class: "btn primary", id: "save-project", text: "Save" }),
    h("button", { type: "button", class: "btn", onclick: (e) => testDraft(e.currentTarget) }, "Test connection"),
    testOut,
    h("a", { class: "btn link", href: "#/projects", text: "Cancel" })),
  project ? h("p", { class: "muted small", text: "Test connection tries the settings in this form; an empty password field uses the stored password." }) : null);
  clear(main, pageHeader(project ? `Edit project: ${project.name}` : "New project"), form);
  sync();
}
