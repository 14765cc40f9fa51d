// The flow diagram: steps as boxes sized to their text, every @resultN reference as an
// arrow (a reference to a missing or later step in red, to a "missing" box), the
// transformation (job.transform) when set, and the destination. The same facts are
// written as a list for screen readers and for copying.
import { h, svg } from "./ui.js";

const PAD_X = 14;
const LINE = 18;
const BOX_H = 74;
const GAP = 70;
const MARGIN = 12;
const FONTS = { kicker: "11px", name: "700 14px", meta: "11.5px", broken: "600 11.5px" }; // as app.css draws them
const REF = /@result(\d+)/gi;

let canvas = null;
function textWidth(text, font) {
  canvas = canvas || document.createElement("canvas");
  const ctx = canvas.getContext("2d");
  ctx.font = `${font} ${getComputedStyle(document.documentElement).fontFamily}`; // the page's own font stack
  // kicker text is uppercase with letter spacing in app.css: measured as drawn
  return Math.ceil(ctx.measureText(String(text ?? "")).width);
}

// Every @resultN a step's SQL names, valid or not (the API's edges hold only the valid ones).
export function references(sql) {
  return [...new Set([...String(sql || "").matchAll(REF)].map((m) => Number(m[1])))];
}

function boxOf(node) {
  const kicker = textWidth(String(node.kicker).toUpperCase(), FONTS.kicker) + String(node.kicker).length * 0.5;
  const width = Math.max(120, kicker, textWidth(node.name, FONTS.name), textWidth(node.meta, FONTS.meta)) + PAD_X * 2;
  return { ...node, width, height: BOX_H };
}

function stepMeta(n) {
  if (!n.project_name) return "no project chosen";
  return n.engine ? `${n.project_name} · ${n.engine}` : n.project_name;
}

// nodes: the API's flow nodes; sqls: each step's SQL text; extra: {transform, destination}.
function layout(flow, sqls, extra) {
  const boxes = flow.nodes.map((n) => boxOf({ id: `s${n.step}`, kind: "step", kicker: `Step ${n.step}`, name: n.name, meta: stepMeta(n), step: n.step }));
  const count = flow.nodes.length;
  const edges = [];
  const broken = [];
  flow.nodes.forEach((n, i) => {
    for (const ref of references(sqls[i])) {
      if (ref >= 1 && ref < n.step && ref <= count) edges.push({ from: `s${ref}`, to: `s${n.step}`, label: `@result${ref}` });
      else broken.push({ to: `s${n.step}`, label: `@result${ref}`, why: ref >= n.step && ref <= count ? "a later step" : "no such step" });
    }
  });
  let last = count ? `s${count}` : null;
  if (extra.transform) {
    const refs = references(extra.transform);
    const good = refs.filter((r) => r >= 1 && r <= count);
    boxes.push(boxOf({ id: "t", kind: "transform", kicker: "Transformation", name: "SQL over the results",
      meta: good.length ? `reads ${good.map((r) => `@result${r}`).join(", ")}` : "reads no step's result" }));
    for (const r of refs.filter((r) => !good.includes(r))) broken.push({ to: "t", label: `@result${r}`, why: "no such step" });
    if (last) edges.push({ from: last, to: "t", label: "", dest: true }); // the transformation runs after the last step
    for (const r of good.filter((r) => r !== count)) edges.push({ from: `s${r}`, to: "t", label: `@result${r}` });
    last = "t";
  }
  if (extra.destination) {
    const d = extra.destination;
    boxes.push(boxOf({ id: "dest", kind: "destination", kicker: "Destination", name: d.table || "(no table yet)",
      meta: `${d.projectName || "no project chosen"}${d.modeLabel ? ` · ${d.modeLabel}` : ""}` }));
    if (last) edges.push({ from: last, to: "dest", label: "", dest: true });
  }
  let x = MARGIN;
  for (const b of boxes) { b.x = x; x += b.width + GAP; }
  return { boxes, edges, broken, width: x - GAP + MARGIN };
}

// Horizontal when it fits the card (maxWidth), else top to bottom: never a half-empty card
// with the destination scrolled out of sight.
export function drawFlow(flow, destination, { sqls = [], transform = null, maxWidth = 0 } = {}) {
  const laid = layout(flow, sqls, { transform, destination });
  const root = maxWidth && laid.width > maxWidth ? vertical(laid) : horizontal(laid);
  return [h("div", { class: "flow-scroll", tabindex: "0", role: "group", "aria-label": "Flow diagram" }, root), words(flow, sqls, transform, destination)];
}

function frame(width, height, layoutName) {
  return svg("svg", { class: `flow-svg flow-${layoutName}`, viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "flow-title" },
    svg("title", { id: "flow-title", text: "Flow of the job: steps, their @result references, transformation and destination" }),
    svg("defs", {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "flow-arrowhead" })),
      svg("marker", { id: "arrow-bad", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "flow-arrowhead-bad" }))));
}

function nodeOf(b, x, y) {
  return svg("g", { class: `flow-node flow-${b.kind}`, transform: `translate(${x},${y})`, dataset: { node: b.id } },
    svg("rect", { width: b.width, height: b.height, rx: "8" }),
    svg("text", { x: PAD_X, y: 20, class: "flow-kicker", text: b.kicker }),
    svg("text", { x: PAD_X, y: 20 + LINE + 2, class: "flow-name", text: b.name }),
    svg("text", { x: PAD_X, y: 20 + LINE * 2 + 4, class: "flow-meta", text: b.meta }));
}

function ghostOf(e, x, y) {
  const text = `${e.label}: ${e.why}`;
  const width = textWidth(text, FONTS.broken) + 16;
  return [width, svg("g", { class: "flow-node flow-broken", transform: `translate(${x},${y})` },
    svg("rect", { width, height: 24, rx: "6" }), svg("text", { x: "8", y: "16", class: "flow-meta", text }))];
}

function spanOf(boxes, byId, e) {
  return boxes.indexOf(byId.get(e.to)) - boxes.indexOf(byId.get(e.from));
}

function horizontal({ boxes, edges, broken, width: innerWidth }) {
  const byId = new Map(boxes.map((b) => [b.id, b]));
  const spans = edges.filter((e) => !e.dest).map((e) => spanOf(boxes, byId, e));
  const arcs = Math.max(0, ...spans.filter((s) => s > 1).map((s) => s - 1));
  const top = 26 + Math.min(arcs, 4) * 16 + (spans.some((s) => s > 1) ? 20 : 0);
  const width = Math.max(innerWidth, ...broken.map((_, i) => MARGIN + (i + 1) * 150));
  const root = frame(width, top + BOX_H + 20 + (broken.length ? 64 : 0), "across");
  const mid = top + BOX_H / 2;
  edges.forEach((e) => {
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    const span = spanOf(boxes, byId, e);
    if (span === 1) {
      root.append(svg("line", { class: `flow-edge${e.dest ? " flow-edge-dest" : ""}`, x1: a.x + a.width, y1: mid, x2: b.x - 2, y2: mid, "marker-end": "url(#arrow)" }));
      if (e.label) root.append(svg("text", { class: "flow-edge-label", x: a.x + a.width + GAP / 2, y: mid - 8, "text-anchor": "middle", text: e.label }));
      return;
    }
    const x1 = a.x + a.width / 2;
    const x2 = b.x + b.width / 2;
    const lift = Math.min(top - 6, 22 + (span - 1) * 16);
    root.append(svg("path", { class: "flow-edge", d: `M${x1},${top} C${x1},${top - lift} ${x2},${top - lift} ${x2},${top - 2}`, "marker-end": "url(#arrow)" }));
    root.append(svg("text", { class: "flow-edge-label", x: (x1 + x2) / 2, y: top - lift * 0.75 - 3, "text-anchor": "middle", text: e.label }));
  });
  broken.forEach((e, i) => {
    const b = byId.get(e.to);
    const gx = b.x + 10 + i * 20;
    const gy = top + BOX_H + 34;
    root.append(svg("line", { class: "flow-edge flow-edge-broken", x1: gx + 40, y1: gy, x2: b.x + b.width / 2, y2: top + BOX_H + 2, "marker-end": "url(#arrow-bad)" }),
      ghostOf(e, gx, gy)[1]);
  });
  boxes.forEach((b) => root.append(nodeOf(b, b.x, top)));
  return root;
}

const VGAP = 46;

function vertical({ boxes, edges, broken }) {
  const byId = new Map(boxes.map((b) => [b.id, b]));
  const lift = (span) => 26 + (Math.min(span, 6) - 2) * 16;
  const maxLift = Math.max(0, ...edges.map((e) => spanOf(boxes, byId, e)).filter((s) => s > 1).map(lift));
  const left = MARGIN + (maxLift ? maxLift + 64 : 0); // room for the arcs and their labels, left of the boxes
  const y = (b) => MARGIN + boxes.indexOf(b) * (BOX_H + VGAP);
  const ghosts = broken.map((e) => ghostOf(e, 0, 0)[0]);
  const width = Math.max(...boxes.map((b) => left + b.width)) + (ghosts.length ? 50 + Math.max(...ghosts) : 0) + MARGIN;
  const root = frame(width, MARGIN * 2 + boxes.length * (BOX_H + VGAP) - VGAP, "down");
  edges.forEach((e) => {
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    const span = spanOf(boxes, byId, e);
    if (span === 1) {
      const x = left + 40;
      root.append(svg("line", { class: `flow-edge${e.dest ? " flow-edge-dest" : ""}`, x1: x, y1: y(a) + BOX_H, x2: x, y2: y(b) - 2, "marker-end": "url(#arrow)" }));
      if (e.label) root.append(svg("text", { class: "flow-edge-label", x: x + 8, y: y(a) + BOX_H + VGAP / 2 + 4, text: e.label }));
      return;
    }
    const ya = y(a) + BOX_H / 2;
    const yb = y(b) + BOX_H / 2;
    const l = lift(span);
    root.append(svg("path", { class: "flow-edge", d: `M${left},${ya} C${left - l},${ya} ${left - l},${yb} ${left - 2},${yb}`, "marker-end": "url(#arrow)" }));
    root.append(svg("text", { class: "flow-edge-label", x: left - l * 0.75 - 4, y: (ya + yb) / 2 + 4, "text-anchor": "end", text: e.label }));
  });
  const perBox = new Map();
  broken.forEach((e) => {
    const b = byId.get(e.to);
    const k = perBox.get(b.id) || 0;
    perBox.set(b.id, k + 1);
    const gx = left + b.width + 50;
    const gy = y(b) + 8 + k * 30;
    root.append(svg("line", { class: "flow-edge flow-edge-broken", x1: gx, y1: gy + 12, x2: left + b.width + 2, y2: y(b) + BOX_H / 2, "marker-end": "url(#arrow-bad)" }),
      ghostOf(e, gx, gy)[1]);
  });
  boxes.forEach((b) => root.append(nodeOf(b, left, y(b))));
  return root;
}

function words(flow, sqls, transform, destination) {
  const items = flow.nodes.map((n, i) => {
    const refs = references(sqls[i]);
    const bad = refs.filter((r) => r >= n.step || r > flow.nodes.length);
    const good = refs.filter((r) => !bad.includes(r));
    return h("li", { class: bad.length ? "flow-text-bad" : null }, `Step ${n.step} “${n.name}” on ${n.project_name || "no project chosen"}`,
      good.length ? ` reads ${good.map((r) => `@result${r}`).join(", ")}` : bad.length ? "" : " reads only its own database",
      bad.length ? h("strong", { text: `${good.length ? ";" : ""} refers to ${bad.map((r) => `@result${r}`).join(", ")}, which ${bad.length === 1 ? "is" : "are"} not an earlier step` }) : null);
  });
  if (transform) {
    const refs = references(transform);
    const good = refs.filter((r) => r >= 1 && r <= flow.nodes.length);
    const bad = refs.filter((r) => !good.includes(r));
    items.push(h("li", { class: bad.length ? "flow-text-bad" : null },
      `The transformation reads ${good.map((r) => `@result${r}`).join(", ") || "no step's result"} after the last step; its rows are what is written`,
      bad.length ? h("strong", { text: `; refers to ${bad.map((r) => `@result${r}`).join(", ")}, which ${bad.length === 1 ? "is" : "are"} not a step` }) : ".",
    ));
  }
  if (destination) items.push(h("li", {}, `The ${transform ? "transformed" : "last step's"} result is written to ${destination.table || "(no table yet)"} on ${destination.projectName || "no project chosen"} (${destination.modeLabel}).`));
  return h("ul", { class: "flow-text small" }, items);
}
