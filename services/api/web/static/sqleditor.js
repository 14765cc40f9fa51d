// A SQL editor: a monospace textarea with a line-number gutter that follows its scrolling.
// Tab keeps moving the focus (no keyboard trap); the text is plain, so it copies cleanly.
import { h } from "./ui.js";

export function sqlEditor({ value = "", label, onInput }) {
  const gutter = h("div", { class: "sql-gutter", "aria-hidden": "true" });
  const area = h("textarea", { class: "sql-input", spellcheck: "false", autocapitalize: "off", autocomplete: "off",
    wrap: "off", rows: "8", "aria-label": label });
  area.value = value;
  const sync = () => {
    const lines = area.value.split("\n").length;
    if (gutter.childElementCount !== lines) {
      gutter.replaceChildren(...Array.from({ length: lines }, (_, i) => h("div", { text: String(i + 1) })));
    }
    gutter.scrollTop = area.scrollTop;
  };
  area.addEventListener("input", () => {
    sync();
    onInput?.(area.value);
  });
  area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
  sync();
  const wrap = h("div", { class: "sql-editor" }, gutter, area);
  return { element: wrap, textarea: area };
}
