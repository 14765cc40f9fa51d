// The execution's verification before COMMIT (job option verify): method, outcome, counts,
// the differing keys (up to 100) and the time it took.
import { cellText, fmtNumber, h, table } from "./ui.js";

const COUNTS = [["rows_expected", "Rows expected"], ["rows_failed", "Rows failed (not expected)"],
  ["keys_written", "Keys written"], ["rows_hashed", "Rows hashed"], ["destination_rows", "Destination rows"],
  ["destination_rows_before", "Destination rows before"], ["missing", "Missing keys"], ["different", "Different rows"],
  ["extra", "Rows not in the source"]];

export function verificationSection(v) {
  const outcome = v.outcome === "passed" ? "passed" : v.outcome === "failed" ? "FAILED" : "not checked";
  const section = h("section", { class: `card verification verification-${v.outcome}`, "aria-labelledby": "verify-h" },
    h("h2", { id: "verify-h", text: `Verification: ${v.method} · ${outcome}` }));
  const items = COUNTS.filter(([k]) => v[k] !== undefined && v[k] !== null)
    .flatMap(([k, label]) => [h("dt", { text: label }), h("dd", { text: fmtNumber(v[k]) })]);
  items.push(h("dt", { text: "Seconds" }), h("dd", { text: String(v.seconds ?? "—") }));
  section.append(h("dl", { class: "verify-counts" }, ...items));
  for (const p of v.problems || []) section.append(h("p", { class: "alert alert-error", text: p }));
  if (v.note) section.append(h("p", { class: "muted", text: v.note }));
  if (v.keys && v.keys.length) {
    const names = [...new Set(v.keys.flatMap((k) => Object.keys(k.key)))];
    section.append(table(["Problem", ...names], v.keys.map((k) => h("tr", {},
      h("td", { text: k.problem }), ...names.map((n) => h("td", {}, cellText(k.key[n]))))), { className: "data-table" }));
  }
  return section;
}
