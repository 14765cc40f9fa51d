// Small DOM helpers shared by the pages: element builder, badges, formatting, toasts,
// confirmation dialog and field errors next to their fields.

export function h(tag, attrs = {}, ...children) {
  const node = tag === "svg" || attrs.svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false || key === "svg") continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && !(node instanceof SVGElement) && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function svg(tag, attrs = {}, ...children) {
  return h(tag, { ...attrs, svg: true }, ...children);
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const STATUS = {
  queued: ["Queued", "◷"],
  running: ["Running", "↻"],
  completed: ["Completed", "✓"],
  partial_success: ["Partial success", "◐"],
  failed: ["Failed", "✕"],
  cancelled: ["Cancelled", "⊘"],
  timed_out: ["Timed out", "⌛"],
  skipped: ["Skipped", "»"],
};
export const STATUSES = Object.keys(STATUS);
export const ACTIVE = new Set(["queued", "running"]);

export function statusLabel(status) {
  return (STATUS[status] || [status])[0];
}

// A status badge: an icon, the words and a color, so it reads without color too.
export function badge(status) {
  if (!status) return h("span", { class: "badge badge-none", text: "Never run" });
  const [label, icon] = STATUS[status] || [status, "•"];
  return h("span", { class: `badge badge-${status}`, dataset: { status } },
    h("span", { class: "badge-icon", "aria-hidden": "true", text: icon }), label);
}

// short: without the year when it is this year's (lists at 1024 px keep dates on one line).
export function fmtDateTime(value, timeZone, { short = false } = {}) {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  const options = { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (short && date.getFullYear() === new Date().getFullYear()) delete options.year;
  if (timeZone) options.timeZone = timeZone;
  try {
    return new Intl.DateTimeFormat(undefined, options).format(date);
  } catch {
    return date.toISOString();
  }
}

export function fmtNumber(value, digits = 0) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function cellText(value) {
  if (value === null || value === undefined) return h("span", { class: "null", text: "NULL" });
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const item = h("div", { class: `toast toast-${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 5000);
}

// Ask before a destructive action; resolves true when confirmed.
export function confirmDialog({ title, text, confirm = "Confirm" }) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-text").textContent = text;
  dialog.querySelector("#confirm-ok").textContent = confirm;
  dialog.returnValue = "";
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (opener && opener.isConnected) opener.focus();
      resolve(dialog.returnValue === "ok");
    }, { once: true });
    dialog.showModal();
    dialog.querySelector("#confirm-cancel").focus();
  });
}

// A labelled form field. `field` is the API's field name ("steps.0.sql"): errors for it
// are shown inside this wrapper.
let uid = 0;
export function field({ label, input, control, hint, field: name, className = "" }) {
  const id = input.id || `f${++uid}`;
  input.id = id;
  const parts = [h("label", { for: id, text: label }), control || input];
  if (hint) {
    const hintId = `${id}-hint`;
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId, text: hint }));
  }
  return h("div", { class: `field ${className}`, dataset: name ? { field: name } : {} }, parts);
}

export function clearFieldErrors(root) {
  root.querySelectorAll(".field-error").forEach((n) => n.remove());
  root.querySelectorAll("[aria-invalid]").forEach((n) => {
    n.removeAttribute("aria-invalid");
    const described = (n.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && !x.endsWith("-err"));
    if (described.length) n.setAttribute("aria-describedby", described.join(" "));
    else n.removeAttribute("aria-describedby");
  });
  root.querySelectorAll(".has-error").forEach((n) => n.classList.remove("has-error"));
}

// Put each API field error next to its field (the closest data-field match: "steps.0"
// for "steps.0.sql.x"); returns the errors that found no field.
export function showFieldErrors(root, errors) {
  clearFieldErrors(root);
  const unplaced = [];
  for (const error of errors) {
    const parts = (error.field || "").split(".");
    let wrapper = null;
    while (parts.length && !wrapper) {
      wrapper = root.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
      if (!wrapper) parts.pop();
    }
    if (!wrapper) {
      unplaced.push(error);
      continue;
    }
    wrapper.classList.add("has-error");
    const id = `err${++uid}-err`;
    wrapper.append(h("p", { class: "field-error", id }, h("span", { "aria-hidden": "true", text: "⚠ " }), error.msg));
    const input = wrapper.querySelector("input, select, textarea");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby") || ""} ${id}`.trim());
    }
  }
  return unplaced;
}

// The summary of a failed save above a form: every error in words, linked to its field.
export function errorSummary(box, errors, title = "Please fix the problems below") {
  if (!errors.length) {
    clear(box);
    box.hidden = true;
    return;
  }
  clear(box, h("h2", { text: title }),
    h("ul", {}, errors.map((e) => h("li", {}, e.field ? h("strong", { text: `${e.field}: ` }) : null, e.msg))));
  box.hidden = false;
  box.focus();
}

export function table(headers, rows, { caption, className = "" } = {}) {
  return h("div", { class: "table-wrap" },
    h("table", { class: className },
      caption ? h("caption", { text: caption }) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => (x instanceof Node ? x : h("th", { scope: "col", text: x }))))),
      h("tbody", {}, rows)));
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", { tabindex: "-1", text: title }), h("div", { class: "actions" }, actions));
}

export function errorBox(err) {
  return h("div", { class: "alert alert-error", role: "alert" }, h("strong", { text: "Error: " }), err.message || String(err));
}

// Go to a hash route (re-rendering when it is the current one).
export function go(hash) {
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else window.location.hash = hash;
}

// Show a result the user just asked for: scroll it into view (clear of the sticky action
// bar, see scroll-padding in app.css) and move the focus to its first heading.
export function reveal(box) {
  if (!box || !box.isConnected || !box.firstElementChild) return;
  const target = box.querySelector("h3, h4, .alert") || box.firstElementChild;
  target.setAttribute("tabindex", "-1");
  target.classList.add("reveal-target");
  target.scrollIntoView({ block: "center" });
  target.focus({ preventScroll: true });
}
