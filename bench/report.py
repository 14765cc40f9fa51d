"""The benchmark's tables and JSON: wall time, rows/s, MB/s, ratio to the goal's reference, peak RSS,
and the goals table of issue #19 (one line per goal, PASS/FAIL, ratios as medians of per-round ratios)."""
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
    "narrow_pg_pg_truncate": (("psql_copy_pipe_narrow",), 1.5),
    "wide_pg_pg_truncate": (("psql_copy_pipe_wide",), 1.5),
    "compare_pg_mysql": (("count_scan_pg_mysql",), 2.0),  # issue 16: compare ≤ 2× count(*) + full scan
    # informational (goal 0: no ok/MISS): the cost of verify against the default (count)
    "pg_pg_truncate_verify_none": (("case:pg_pg_truncate",), 0.0),
    "pg_pg_truncate_verify_checksum": (("case:pg_pg_truncate",), 0.0),
}
DISPATCH_GOAL_MS = 150.0
# The goals table: (goal, case, reference names (fastest present counts), limit of case / reference).
GOAL_LINES: tuple[tuple[str, str, tuple[str, ...], float], ...] = (
    ("PG->PG truncate_load <= 1.15 x psql text COPY pipe", "pg_pg_truncate", ("psql_copy_pipe",), 1.15),
    ("PG->PG truncate_load <= 1.15 x binary COPY pipe", "pg_pg_truncate", ("psql_copy_pipe_binary",), 1.15),
    ("MariaDB->PG <= 0.6 x best of pgloader, ingestr", "mysql_pg_truncate",
     ("pgloader_mysql_pg", "ingestr_mysql_pg"), 0.6),
    ("PG->MariaDB <= 1.1 x COPY to file + LOAD DATA", "pg_mysql_truncate", ("copy_file_load_data",), 1.1),
    ("upsert <= 1.3 x truncate_load", "pg_pg_upsert", ("case:pg_pg_truncate",), 1.3),
    ("sync_delete <= 1.3 x truncate_load", "pg_pg_sync_delete", ("case:pg_pg_truncate",), 1.3),
    ("narrow (2 int cols) <= 1.5 x its text pipe", "narrow_pg_pg_truncate", ("psql_copy_pipe_narrow",), 1.5),
    ("wide (100 cols) <= 1.5 x its text pipe", "wide_pg_pg_truncate", ("psql_copy_pipe_wide",), 1.5),
)

# Floors printed under the goal line they bound (by the goal's label): (what, the floor's baseline,
# what it is divided by (the fastest present counts)). A floor is the least the goal's work takes
# here with no product in between (bench.baselines): when its ratio is above the goal's limit, no
# tool of this architecture can reach the goal on this machine. The keyed floors divide by
# floor_truncate_sql (TRUNCATE + \\copy into the keyed table: the same client, the same file).
FLOORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    GOAL_LINES[1][0]: ("binary pipe through RabbitMQ (bench.relay)", "rabbitmq_pipe_binary",
                       ("psql_copy_pipe_binary",)),
    GOAL_LINES[2][0]: ("mariadb --batch | psql COPY", "mariadb_psql_pipe", ("pgloader_mysql_pg", "ingestr_mysql_pg")),
    GOAL_LINES[4][0]: ("PG alone: \\copy to staging + merge", "floor_upsert_sql", ("floor_truncate_sql",)),
    GOAL_LINES[5][0]: ("PG alone: the same + anti-join DELETE", "floor_sync_delete_sql", ("floor_truncate_sql",)),
}


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
    phases: dict = field(default_factory=dict)  # {service: {phase: seconds}} (bench.breakdown)
    dispatch_s: float | None = None  # queued -> started
    ratio: float | None = None  # median of the per-round ratios to the reference, when rounds pair up

    @classmethod
    def of(cls, case: str, execution: dict, *, rows: int, source_mb: float) -> "Result":
        wall = float(execution["wall_s"])
        counts = {k: execution.get(k) for k in ("rows_read", "rows_inserted", "rows_updated", "rows_skipped",
                                                 "rows_deleted", "rows_failed")}
        error = execution.get("error") or ""
        return cls(case=case, status=execution.get("status", "?"), wall_s=round(wall, 2),
                   duration_s=round(float(execution.get("duration_seconds") or 0), 2), rows=rows,
                   rows_per_s=round(rows / wall), mb_per_s=round(source_mb / wall, 1), counts=counts,
                   rss_mb=execution.get("rss_mb", {}), phases=execution.get("phases", {}),
                   dispatch_s=execution.get("dispatch_s"),
                   error=str(error.get("message", error) if isinstance(error, dict) else error)[:500])


def reference(case: str, results: dict[str, Result], base: dict[str, tuple[float | None, str]],
              names: tuple[str, ...] | None = None) -> tuple[str, float | None, float]:
    """(reference name, its seconds or None, goal ratio) for a case (``names``: other references)."""
    names, goal = (names, 0.0) if names is not None else GOALS.get(case, ((), 0.0))
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


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def round_ratios(case: str, ref: str, case_runs: dict[str, list["Result"]],
                 base_runs: list[dict[str, tuple[float | None, str]]]) -> list[float]:
    """Per-round ratios case / reference (round i of the case against round i of the reference)."""
    out = []
    for i, run in enumerate(case_runs.get(case, [])):
        if ref.startswith("case:"):
            other = case_runs.get(ref[5:], [])
            ref_s = other[i].wall_s if i < len(other) and other[i].status == "completed" else None
        else:
            ref_s = base_runs[i].get(ref, (None, ""))[0] if i < len(base_runs) else None
        if ref_s and run.status == "completed":
            out.append(round(run.wall_s / ref_s, 3))
    return out


def goal_ratio(case: str, names: tuple[str, ...], results: dict[str, "Result"],
               base: dict[str, tuple[float | None, str]], case_runs: dict[str, list["Result"]],
               base_runs: list[dict[str, tuple[float | None, str]]]) -> tuple[str, float | None, list[float]]:
    """(reference used, median ratio or None, per-round ratios): the fastest reference present
    (by its median) counts; the ratio is the median of the per-round ratios, or median wall /
    median reference when the rounds do not pair up."""
    ref, ref_s, _ = reference(case, results, base, names)
    r = results.get(case)
    if r is None or r.status != "completed" or not ref_s:
        return ref, None, []
    samples = round_ratios(case, ref, case_runs, base_runs)
    return ref, (median(samples) if samples else round(r.wall_s / ref_s, 3)), samples


def render_goals(results: list[Result], base: dict[str, tuple[float | None, str]],
                 case_runs: dict[str, list[Result]], base_runs: list[dict[str, tuple[float | None, str]]],
                 dispatch_ms: list[float], dispatch_single_ms: list[float] | None = None) -> str:
    """The goals of issue #19, one line each: PASS, FAIL, or '-' when not measured in this run."""
    by_case = {r.case: r for r in results}
    lines = [f"{'goal':52} {'verdict':7} measured"]
    for label, case, names, limit in GOAL_LINES:
        ref, ratio, samples = goal_ratio(case, names, by_case, base, case_runs, base_runs)
        if ratio is None:
            lines.append(f"{label:52} {'-':7} not measured ({case} or {'/'.join(names)} missing)")
            continue
        r = by_case[case]
        rounds = f"; rounds {', '.join(f'{x:.2f}' for x in samples)}" if len(samples) > 1 else ""
        lines.append(f"{label:52} {'PASS' if ratio <= limit else 'FAIL':7} ratio {ratio:.2f} "
                     f"({case} {r.wall_s:.1f} s vs {ref} {reference_seconds(ref, by_case, base):.1f} s{rounds})")
        floor = floor_line(label, limit, base)
        if floor:
            lines.append(floor)
    for label, samples in (("distributed", dispatch_ms), ("one process", dispatch_single_ms or [])):
        if samples:
            m = median(samples)
            lines.append(f"{f'1-row execute -> completed <= 150 ms ({label})':52} "
                         f"{'PASS' if m <= DISPATCH_GOAL_MS else 'FAIL':7} median {m:.0f} ms ({len(samples)} runs)")
    rss = [(r.case, r.rows, max(r.rss_mb.get("extractor", 0), r.rss_mb.get("loader", 0))) for r in results
           if r.rss_mb and r.case != "compare_pg_mysql"]
    if rss:
        worst = max(rss, key=lambda x: x[2])
        detail = ", ".join(f"{c} {n / 1e6:g}M {mb:.0f}" for c, n, mb in rss if c.endswith("truncate"))
        lines.append(f"{'peak RSS of each worker <= 200 MB, 1M..10M rows':52} "
                     f"{'PASS' if worst[2] <= RSS_GOAL_MB else 'FAIL':7} max {worst[2]:.0f} MB ({worst[0]}); {detail}")
    return "\n".join(lines)


def floor_line(goal: str, limit: float, base: dict[str, tuple[float | None, str]]) -> str:
    """The floor under a goal, when measured: '  floor: <what> ratio R (a s vs b s)', and whether the
    goal's limit lies below it."""
    if goal not in FLOORS:
        return ""
    what, name, over = FLOORS[goal]
    seconds = base.get(name, (None, ""))[0]
    refs = [(base[n][0], n) for n in over if base.get(n, (None, ""))[0]]
    if not seconds or not refs:
        return ""
    ref_s, ref = min(refs)
    ratio = seconds / ref_s
    below = "; the goal is below this floor" if ratio > limit else ""
    return f"{'  floor: ' + what:52} {'':7} ratio {ratio:.2f} ({name} {seconds:.1f} s vs {ref} {ref_s:.1f} s{below})"


def reference_seconds(ref: str, results: dict[str, Result], base: dict[str, tuple[float | None, str]]) -> float:
    if ref.startswith("case:"):
        return results[ref[5:]].wall_s
    return base[ref][0] or 0.0


def render(results: list[Result], base: dict[str, tuple[float | None, str]]) -> str:
    by_case = {r.case: r for r in results}
    lines = [f"{'case':22} {'status':10} {'wall s':>7} {'rows/s':>9} {'MB/s':>6} {'reference':24} "
             f"{'ref s':>6} {'ratio':>6} {'goal':>5}  peak RSS MB (extractor/loader/scheduler)"]
    for r in results:
        ref, ref_s, goal = reference(r.case, by_case, base)
        value = (r.ratio if r.ratio is not None else r.wall_s / ref_s) if ref_s else None
        ratio = f"{value:.2f}" if value is not None else "-"
        ok = "" if value is None or not goal else (" ok" if value <= goal else " MISS")
        rss = "/".join(f"{r.rss_mb.get(n, 0):.0f}" for n in ("extractor", "loader", "scheduler"))
        rss_ok = "" if max(r.rss_mb.get("extractor", 0), r.rss_mb.get("loader", 0)) <= RSS_GOAL_MB else " over"
        lines.append(f"{r.case:22} {r.status:10} {r.wall_s:7.1f} {r.rows_per_s:9.0f} {r.mb_per_s:6.1f} {ref:24} "
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
                      "ratio": (r.ratio if r.ratio is not None else round(r.wall_s / ref_s, 3)) if ref_s else None})
    body = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg": _loadavg(), **meta, "cases": cases,
            "baselines": {n: {"seconds": s, "note": note} for n, (s, note) in base.items()}}
    path = directory / f"bench-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    path.write_text(json.dumps(body, indent=2))
    return path


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return ""
