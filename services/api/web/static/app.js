// Hash routes → pages. Each page is render(main, params, ctx) and may return a cleanup
// function; ctx.alive() turns false when the user navigates away (stops polling).
import { setToken, token } from "./api.js";
import { clear, errorBox, field, h } from "./ui.js";
import * as home from "./home.js";
import * as jobs from "./jobs.js";
import * as editor from "./editor.js";
import * as history from "./history.js";
import * as execution from "./execution.js";
import * as projects from "./projects.js";
import * as alerts from "./alerts.js";

const ROUTES = [
  [/^\/?$/, home, "home"],
  [/^\/home$/, home, "home"],
  [/^\/jobs$/, jobs, "jobs"],
  [/^\/jobs\/new$/, editor, "jobs"],
  [/^\/jobs\/(?<id>\d+)$/, editor, "jobs"],
  [/^\/history$/, history, "history"],
  [/^\/executions\/(?<id>\d+)$/, execution, "history"],
  [/^\/projects$/, projects, "projects"],
  [/^\/projects\/new$/, projects, "projects"],
  [/^\/projects\/(?<id>\d+)$/, projects, "projects"],
  [/^\/channels$/, alerts, "channels"],
];

let current = { cleanup: null, token: 0 };
let firstRoute = true; // a fresh load leaves the focus at the top (skip link first)

function parse() {
  const raw = window.location.hash.replace(/^#/, "") || "/home";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

async function route() {
  const { path, query } = parse();
  if (typeof current.cleanup === "function") current.cleanup();
  const token = ++current.token;
  const ctx = { alive: () => token === current.token, query, path };
  const main = document.getElementById("main");
  const match = ROUTES.map(([re, page, nav]) => [path.match(re), page, nav]).find(([m]) => m);
  document.querySelectorAll("[data-nav]").forEach((a) => a.removeAttribute("aria-current"));
  if (!match) {
    clear(main, h("h1", { text: "Page not found" }), h("p", {}, h("a", { href: "#/jobs", text: "Back to jobs" })));
    return;
  }
  const [m, page, nav] = match;
  document.querySelector(`[data-nav="${nav}"]`)?.setAttribute("aria-current", "page");
  clear(main, h("p", { class: "muted", text: "Loading…" }));
  try {
    const cleanup = await page.render(main, { ...(m.groups || {}), path }, ctx);
    if (ctx.alive()) current.cleanup = cleanup;
    else if (typeof cleanup === "function") cleanup();
  } catch (err) {
    if (!ctx.alive()) return;
    if (err.status === 401) signIn(main, err);
    else clear(main, h("h1", { text: "Something went wrong" }), errorBox(err));
  }
  if (ctx.alive()) {
    const heading = main.querySelector("h1");
    document.title = `${heading ? heading.textContent : "Data Migration"} · Semantico`;
    if (!firstRoute && document.activeElement === document.body) heading?.focus({ preventScroll: true });
    firstRoute = false;
  }
}

export function navigate(hash) { // kept for console use
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

// The API wants a bearer token: ask for one and keep it in this browser (localStorage).
function signIn(main, err) {
  const refused = Boolean(token());
  setToken(null); // a refused token is of no use: forget it, and offer no "Sign out" of it
  showTokenButton();
  const input = h("input", { type: "password", autocomplete: "off", spellcheck: "false", class: "mono" });
  const form = h("form", { class: "card project-form", onsubmit: (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    showTokenButton();
    route();
  } },
  refused ? h("div", { class: "alert alert-error", role: "alert", text: `The token stored in this browser was refused (${err.message}), so it was forgotten. Enter a valid token.` }) : null,
  h("p", {}, "The API needs a token. Use one from ", h("code", { text: "datamig token create" }),
    ", the one the API printed when it first started, or DM_ADMIN_TOKEN. It is kept in this browser only."),
  field({ label: "API token", field: "token", input }),
  h("div", { class: "action-bar" }, h("button", { type: "submit", class: "btn primary", text: "Use this token" })));
  clear(main, h("h1", { tabindex: "-1", text: "Sign in" }), form);
  input.focus();
}

function showTokenButton() {
  const button = document.getElementById("forget-token");
  if (button) button.hidden = !token();
}

document.getElementById("forget-token")?.addEventListener("click", () => {
  setToken(null);
  showTokenButton();
  route();
});
showTokenButton();

// The skip link must not change the hash (that is the router's): it moves the focus.
document.querySelector(".skip-link")?.addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main").focus();
});
window.addEventListener("hashchange", route);
route();
