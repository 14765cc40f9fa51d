// The flow diagram: steps as boxes, @resultN references as arrows, and the destination.
// Drawn as SVG from the API's flow answer, with the same facts as a list for screen readers.
import { h, svg } from "./ui.js";

const BOX_W = 180;
const BOX_H = 66;
const GAP = 66;
const TOP = 74;
const PAD = 12;

function clip(text, max) {
  const s = String(text ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export function drawFlow(flow, destination) {
  const nodes = flow.nodes.map((n) => ({ ...n, kind: "step" }));
  if (flow.transform) nodes.push({ id: "transform", kind: "transform", name: "Transformation", project_name: `reads ${flow.transform.references.map((n) => `@result${n}`).join(", ") || "no result"}` });
  if (destination) nodes.push({ id: "dest", kind: "destination", name: destination.table || "(no table yet)", project_name: destination.projectName, engine: destination.modeLabel });
  const x = (i) => PAD + i * (BOX_W + GAP);
  const width = PAD * 2 + nodes.length * BOX_W + (nodes.length - 1) * GAP;
  const maxSpan = Math.max(1, ...flow.edges.map((e) => e.to - e.from));
  const top = maxSpan > 1 ? TOP : 24;
  const height = top + BOX_H + 24;
  const index = new Map(flow.nodes.map((n, i) => [n.id, i]));
  const root = svg("svg", { class: "flow-svg", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "flow-title" },
    svg("title", { id: "flow-title", text: "Flow of the job's steps and their @result references" }),
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "flow-arrowhead" }))));
  for (const edge of flow.edges) {
    const a = index.get(edge.from);
    const b = index.get(edge.to);
    if (a === undefined || b === undefined) continue;
    if (b - a === 1) {
      root.append(svg("line", { class: "flow-edge", x1: x(a) + BOX_W, y1: top + BOX_H / 2, x2: x(b) - 2, y2: top + BOX_H / 2, "marker-end": "url(#arrow)" }));
    } else {
      const x1 = x(a) + BOX_W / 2;
      const x2 = x(b) + BOX_W / 2;
      const lift = Math.min(top - 8, 18 + (b - a) * 14);
      root.append(svg("path", { class: "flow-edge", d: `M${x1},${top} C${x1},${top - lift} ${x2},${top - lift} ${x2},${top - 2}`, "marker-end": "url(#arrow)" }));
    }
    root.append(svg("text", { class: "flow-edge-label", x: b - a === 1 ? x(b) - GAP / 2 : (x(a) + x(b) + BOX_W) / 2,
      y: b - a === 1 ? top + BOX_H / 2 - 8 : top - Math.min(top - 8, 18 + (b - a) * 14) * 0.75 - 4, "text-anchor": "middle", text: `@result${edge.from}` }));
  }
  for (let a = flow.nodes.length - 1; flow.nodes.length && a < nodes.length - 1; a += 1) { // last step → transform → destination
    root.append(svg("line", { class: `flow-edge flow-edge-${nodes[a + 1].kind === "transform" ? "transform" : "dest"}`, x1: x(a) + BOX_W, y1: top + BOX_H / 2, x2: x(a + 1) - 2, y2: top + BOX_H / 2, "marker-end": "url(#arrow)" }));
  }
  nodes.forEach((node, i) => {
    const g = svg("g", { class: `flow-node flow-${node.kind}`, transform: `translate(${x(i)},${top})` },
      svg("rect", { width: BOX_W, height: BOX_H, rx: "8" }),
      svg("text", { x: "10", y: "19", class: "flow-kicker", text: node.kind === "step" ? `Step ${node.step}` : node.kind === "transform" ? "Transform" : "Destination" }),
      svg("text", { x: "10", y: "38", class: "flow-name", text: clip(node.name, 22) }),
      svg("text", { x: "10", y: "56", class: "flow-meta", text: clip(node.project_name ? `${node.project_name}${node.engine ? ` · ${node.engine}` : ""}` : "no project chosen", 25) }));
    root.append(g);
  });
  const words = flow.nodes.map((n) => {
    const refs = flow.edges.filter((e) => e.to === n.id).map((e) => `@result${e.from}`);
    return h("li", {}, `Step ${n.step} “${n.name}” on ${n.project_name || "no project chosen"}`,
      refs.length ? ` reads ${refs.join(", ")}` : " reads only its own database");
  });
  if (flow.transform) words.push(h("li", {}, `The transformation reads ${flow.transform.references.map((n) => `@result${n}`).join(", ")} after the last step; its rows are what is written.`));
  if (destination) words.push(h("li", {}, `The ${flow.transform ? "transformation's" : "last step's"} result is written to ${destination.table || "(no table yet)"} on ${destination.projectName || "no project chosen"} (${destination.modeLabel}).`));
  return [h("div", { class: "flow-scroll" }, root), h("ul", { class: "flow-text small" }, words)];
}
