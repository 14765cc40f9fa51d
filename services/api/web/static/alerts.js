// Alerts: the Channels page (#/channels: channels, "Send test notification", the default
// rules for all jobs, a job's own rules) and the Notifications section of an execution.
// Kept in its own module so the other pages change by one line each.
import { api } from "./api.js";
import { clear, errorSummary, field, fmtDateTime, h, pageHeader, showFieldErrors, table, toast } from "./ui.js";

const EVENTS = ["failed", "timed_out", "partial_success", "recovered", "slow"];
const KINDS = { webhook: "Webhook (signed JSON)", slack: "Slack incoming webhook", email: "E-mail (SMTP)" };
const SETTINGS_HINT = {
  webhook: '{"url": ""}',
  slack: "{}",
  email: '{"host": "smtp.example.com", "port": 587, "starttls": true, "username": "dm", "sender": "dm@example.com", "to": ["oncall@example.com"]}',
};
const SECRET_HINT = {
  webhook: "Signing key (HMAC-SHA256, at least 16 characters)",
  slack: "Incoming-webhook URL (it is a credential)",
  email: "SMTP password (optional)",
};

// The execution page's section: every delivery attempt of its notifications.
export function notificationsSection(executionId) {
  const section = h("section", { class: "card notifications", "aria-labelledby": "notes-h" },
    h("h2", { id: "notes-h", text: "Notifications" }), h("p", { class: "muted", text: "Loading…" }));
  api.get(`/api/executions/${executionId}/notifications`).then((notes) => {
    section.lastChild.remove();
    if (!notes.length) {
      section.append(h("p", { class: "muted", text: "No alert was raised by this execution." }));
      return;
    }
    section.append(table(["Channel", "Event", "Attempt", "Status", "Time", "Code", "Response"], notes.map((n) => h("tr", {},
      h("td", { text: n.channel_name || `#${n.channel_id}` }), h("td", { text: n.event }),
      h("td", { class: "num", text: String(n.attempt) }), h("td", { class: `note-${n.status}`, text: n.status }),
      h("td", { text: n.sent_at ? fmtDateTime(n.sent_at) : n.next_attempt_at ? `next ${fmtDateTime(n.next_attempt_at)}` : "—" }),
      h("td", { class: "num", text: n.response_code ?? "—" }), h("td", { text: n.response || "" }))), { className: "data-table" }));
  }).catch((err) => { section.lastChild.textContent = `Notifications cannot be shown: ${err.message}`; });
  return section;
}

export async function render(main) {
  const [channels, defaults, jobs] = await Promise.all([api.get("/api/channels"), api.get("/api/alerts/defaults"), api.get("/api/jobs")]);
  clear(main, pageHeader("Alert channels"), channelList(main, channels), channelForm(main, null),
    rulesForm({ title: "Default rules (jobs without their own)", rules: defaults, channels, save: (body) => api.put("/api/alerts/defaults", body) }),
    jobRules(channels, jobs));
}

function channelList(main, channels) {
  if (!channels.length) return h("p", { class: "muted card", text: "No channel yet: add one below." });
  return table(["Name", "Kind", "Settings", "Secret", ""], channels.map((c) => h("tr", { dataset: { channel: c.name } },
    h("td", { text: c.name }), h("td", { text: KINDS[c.kind] || c.kind }),
    h("td", { class: "mono small", text: JSON.stringify(c.settings) }), h("td", { text: c.has_secret ? "stored" : "—" }),
    h("td", {},
      h("button", { type: "button", class: "btn small", text: "Send test notification", onclick: (e) => testChannel(e.target, c) }),
      h("button", { type: "button", class: "btn small", text: "Edit", onclick: () => main.querySelector(".channel-form").replaceWith(channelForm(main, c)) }),
      h("button", { type: "button", class: "btn small danger", text: "Delete", onclick: () => deleteChannel(main, c) })))),
  { className: "data-table channels" });
}

async function testChannel(button, channel) {
  button.disabled = true;
  try {
    const r = await api.post(`/api/channels/${channel.id}/test`);
    toast(`${channel.name}: ${r.status === "sent" ? "delivered" : "not delivered"} (${r.response || r.status})`, r.status === "sent" ? "info" : "error");
  } catch (err) {
    toast(`${channel.name}: ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

async function deleteChannel(main, channel) {
  try {
    await api.del(`/api/channels/${channel.id}`);
    await render(main);
  } catch (err) {
    toast(err.message, "error");
  }
}

function channelForm(main, channel) {
  const c = channel || { name: "", kind: "webhook", settings: {} };
  const els = {
    name: h("input", { value: c.name, required: true }),
    kind: h("select", {}, Object.entries(KINDS).map(([v, label]) => h("option", { value: v, selected: v === c.kind, text: label }))),
    settings: h("textarea", { class: "mono", rows: 3, text: channel ? JSON.stringify(c.settings) : SETTINGS_HINT.webhook }),
    secret: h("input", { type: "password", autocomplete: "new-password", placeholder: channel?.has_secret ? "stored: leave empty to keep it" : "" }),
  };
  els.kind.addEventListener("change", () => { if (!channel) els.settings.value = SETTINGS_HINT[els.kind.value]; });
  const summary = h("div", { class: "alert alert-error", tabindex: "-1", hidden: true });
  const form = h("form", { class: "card channel-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    let settings;
    try {
      settings = JSON.parse(els.settings.value || "{}");
    } catch {
      errorSummary(summary, showFieldErrors(form, [{ field: "settings", msg: "settings must be JSON" }]));
      return;
    }
    const body = { name: els.name.value.trim(), kind: els.kind.value, settings };
    if (els.secret.value) body.secret = els.secret.value;
    try {
      await (channel ? api.put(`/api/channels/${channel.id}`, body) : api.post("/api/channels", body));
      toast(`Channel ${body.name} saved`);
      await render(main);
    } catch (err) {
      errorSummary(summary, showFieldErrors(form, err.fieldErrors.length ? err.fieldErrors : [{ msg: err.message }]));
    }
  } },
  h("h2", { text: channel ? `Edit channel: ${channel.name}` : "New channel" }), summary,
  field({ label: "Name", field: "name", input: els.name }), field({ label: "Kind", field: "kind", input: els.kind }),
  field({ label: "Settings (JSON)", field: "settings", input: els.settings, hint: "webhook: url, headers; slack: none; email: host, port, starttls, username, sender, to" }),
  field({ label: "Secret", field: "secret", input: els.secret, hint: `${SECRET_HINT[c.kind]}. Stored encrypted, never shown again.` }),
  h("div", { class: "action-bar" }, h("button", { type: "submit", class: "btn primary", text: "Save channel" })));
  return form;
}

function rulesForm({ title, rules, channels, save }) {
  const r = rules || { channels: [], on: ["failed", "timed_out", "recovered"], slow_factor: 3, disable_after_failures: null };
  const chosen = channels.map((c) => h("label", { class: "check" }, h("input", { type: "checkbox", value: c.id, checked: r.channels.includes(c.id) }), ` ${c.name}`));
  const events = EVENTS.map((ev) => h("label", { class: "check" }, h("input", { type: "checkbox", value: ev, checked: r.on.includes(ev) }), ` ${ev}`));
  const slow = h("input", { type: "number", min: "1.1", step: "0.1", value: r.slow_factor });
  const disable = h("input", { type: "number", min: "1", value: r.disable_after_failures ?? "", placeholder: "never" });
  const summary = h("div", { class: "alert alert-error", tabindex: "-1", hidden: true });
  const form = h("form", { class: "card rules-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const body = { channels: chosen.map((l) => l.firstChild).filter((i) => i.checked).map((i) => Number(i.value)),
      on: events.map((l) => l.firstChild).filter((i) => i.checked).map((i) => i.value),
      slow_factor: Number(slow.value), disable_after_failures: disable.value ? Number(disable.value) : null };
    try {
      await save(body);
      errorSummary(summary, []);
      toast("Alert rules saved");
    } catch (err) {
      errorSummary(summary, showFieldErrors(form, err.fieldErrors.length ? err.fieldErrors : [{ msg: err.message }]));
    }
  } },
  h("h2", { text: title }), summary,
  h("fieldset", { dataset: { field: "channels" } }, h("legend", { text: "Notify" }), chosen.length ? chosen : h("span", { class: "muted", text: "no channel yet" })),
  h("fieldset", { dataset: { field: "on" } }, h("legend", { text: "On" }), events),
  field({ label: "Slow when longer than × the median of the last 20 runs", field: "slow_factor", input: slow }),
  field({ label: "Disable the job after this many consecutive failed runs", field: "disable_after_failures", input: disable }),
  h("div", { class: "action-bar" }, h("button", { type: "submit", class: "btn primary", text: "Save rules" })));
  return form;
}

function jobRules(channels, jobs) {
  const holder = h("div", {});
  const pick = h("select", {}, h("option", { value: "", text: "Choose a job…" }), jobs.map((j) => h("option", { value: j.id, text: j.name })));
  pick.addEventListener("change", () => {
    const job = jobs.find((j) => String(j.id) === pick.value);
    clear(holder, job ? rulesForm({ title: `Rules of ${job.name}${job.alerts ? "" : " (now: the defaults)"}`, rules: job.alerts, channels,
      save: async (body) => { job.alerts = (await api.patch(`/api/jobs/${job.id}`, { alerts: body })).alerts; } }) : null);
  });
  return h("section", { class: "card" }, h("h2", { text: "A job's own rules" }), field({ label: "Job", input: pick }), holder);
}
