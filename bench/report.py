"""The benchmark's table and JSON: wall time, rows/s, MB/s, ratio to the goal's reference, peak RSS."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

RSS_GOAL_MB = 200.0
# case -> (reference names (the fastest one present counts), goal ratio); "case:" refers to our own case.
# The goals of issue #19, measured at the defaults a user runs.
GOALS: dict[str, tuple[tuple[str, ...], float]] = {
    "pg_pg_truncate": (("psql_copy_pipe",), 1.15),
    "mysql_pg_truncate": (("pgloader_mysql_pg", "ingestr_mysql_pg"), 0.6),
    "pg_mysql_truncate": (("copy_file_load_data",), 1.1),
    "pg_pg_upsert": (("case:pg_pg_truncate",), 1.3),
    "pg_pg_sync_delete": (("case:pg_pg_truncate",), 1.3),
}
DISPATCH_GOAL_MS = 150.0


@dataclass
class Result:
    case: str
    status: str
    wall_s: float
    duration_s: float
    rows: int
    rows_per_s: float
    mb_per_s: float
    counts: dict = field(default_factory=dict)
    rss_mb: dict = field(default_factory=dict)
    error: str = ""
    verified: str = ""
    samples_s: list = field(default_factory=list)

    @classmethod
    def of(cls, case: str, execution: dict, *, rows: int, source_mb: float) -> "Result":
        wall = float(execution["wall_s"])
        counts = {k: execution.get(k) for k in ("rows_read", "rows_inserted", "rows_updated", "rows_skipped",
                                                 "rows_deleted", "rows_failed")}
        error = execution.get("error") or ""
        return cls(case=case, status=execution.get("status", "?"), wall_s=round(wall, 2),
                   duration_s=round(float(execution.get("duration_seconds") or 0), 2), rows=rows,
                   rows_per_s=round(rows / wall), mb_per_s=round(source_mb / wall, 1), counts=counts,
                   rss_mb=execution.get("rss_mb", {}),
                   error=str(error.get("message", error) if isinstance(error, dict) else error)[:500])


def reference(case: str, results: dict[str, Result], base: dict[str, tuple[float | None, str]]
              ) -> tuple[str, float | None, float]:
    """(reference name, its seconds or None, goal ratio) for a case."""
    names, goal = GOALS.get(case, ((), 0.0))
    found = []
    for name in names:
        if name.startswith("case:"):
            r = results.get(name[5:])
            if r and r.status == "completed":
                found.append((r.wall_s, name))
        elif base.get(name, (None, ""))[0] is not None:
            found.append((base[name][0], name))
    if not found:
        return (names[0] if names else "-"), None, goal
    seconds, name = min(found)
    return name, seconds, goal


def render(results: list[Result], base: dict[str, tuple[float | None, str]]) -> str:
    by_case = {r.case: r for r in results}
    lines = [f"{'case':20} {'status':10} {'wall s':>7} {'rows/s':>9} {'MB/s':>6} {'reference':24} "
             f"{'ref s':>6} {'ratio':>6} {'goal':>5}  peak RSS MB (extractor/loader/scheduler)"]
    for r in results:
        ref, ref_s, goal = reference(r.case, by_case, base)
        ratio = f"{r.wall_s / ref_s:.2f}" if ref_s else "-"
        ok = "" if not ref_s else (" ok" if r.wall_s / ref_s <= goal else " MISS")
        rss = "/".join(f"{r.rss_mb.get(n, 0):.0f}" for n in ("extractor", "loader", "scheduler"))
        rss_ok = "" if max(r.rss_mb.get("extractor", 0), r.rss_mb.get("loader", 0)) <= RSS_GOAL_MB else " over"
        lines.append(f"{r.case:20} {r.status:10} {r.wall_s:7.1f} {r.rows_per_s:9.0f} {r.mb_per_s:6.1f} {ref:24} "
                     f"{(f'{ref_s:.1f}' if ref_s else '-'):>6} {ratio:>6} {goal:5.1f}{ok}  {rss}{rss_ok}")
    if base:
        lines.append("")
        lines.append("baselines:")
        for name, (seconds, note) in base.items():
            lines.append(f"  {name:24} {(f'{seconds:.1f} s' if seconds is not None else 'n/a'):>9}  {note}")
    return "\n".join(lines)


def render_latency(samples_ms: list[float]) -> str:
    """The 1-row execute → completed line: median, spread and the goal."""
    ordered = sorted(samples_ms)
    median = ordered[(len(ordered) - 1) // 2]
    verdict = "ok" if median <= DISPATCH_GOAL_MS else "MISS"
    return (f"dispatch_1row: execute -> completed median {median:.0f} ms (min {ordered[0]:.0f}, max {ordered[-1]:.0f}, "
            f"{len(ordered)} runs), goal {DISPATCH_GOAL_MS:.0f} ms {verdict}")


def write_json(directory: Path, results: list[Result], base: dict[str, tuple[float | None, str]],
               meta: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    by_case = {r.case: r for r in results}
    cases = []
    for r in results:
        ref, ref_s, goal = reference(r.case, by_case, base)
        cases.append({**asdict(r), "reference": ref, "reference_s": ref_s, "goal_ratio": goal,
                      "ratio": round(r.wall_s / ref_s, 3) if ref_s else None})
    body = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta, "cases": cases,
            "baselines": {n: {"seconds": s, "note": note} for n, (s, note) in base.items()}}
    path = directory / f"bench-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    path.write_text(json.dumps(body, indent=2))
    return path
