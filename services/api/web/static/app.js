// Hash routes → pages. Each page is render(main, params, ctx) and may return a cleanup
// function; ctx.alive() turns false when the user navigates away (stops polling).
import { clear, errorBox, h } from "./ui.js";
import * as jobs from "./jobs.js";
import * as editor from "./editor.js";
import * as history from "./history.js";
import * as execution from "./execution.js";
import * as projects from "./projects.js";

const ROUTES = [
  [/^\/?$/, jobs, "jobs"],
  [/^\/jobs$/, jobs, "jobs"],
  [/^\/jobs\/new$/, editor, "jobs"],
  [/^\/jobs\/(?<id>\d+)$/, editor, "jobs"],
  [/^\/history$/, history, "history"],
  [/^\/executions\/(?<id>\d+)$/, execution, "history"],
  [/^\/projects$/, projects, "projects"],
  [/^\/projects\/new$/, projects, "projects"],
  [/^\/projects\/(?<id>\d+)$/, projects, "projects"],
];

let current = { cleanup: null, token: 0 };

function parse() {
  const raw = window.location.hash.replace(/^#/, "") || "/jobs";
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
    if (ctx.alive()) clear(main, h("h1", { text: "Something went wrong" }), errorBox(err));
  }
  if (ctx.alive()) {
    const heading = main.querySelector("h1");
    document.title = `${heading ? heading.textContent : "Data Migration"} · Semantico`;
    if (ctx.focusMain !== false && document.activeElement === document.body) heading?.focus({ preventScroll: true });
  }
}

export function navigate(hash) { // kept for console use
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

window.addEventListener("hashchange", route);
route();
