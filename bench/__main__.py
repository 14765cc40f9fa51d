"""``python -m bench`` (``make bench``): the issue-7 benchmark, side by side with baselines.

Builds the benchmark tables (``--rows``, default 1,000,000; 10 mixed columns, ~250 bytes
a row), starts the real distributed services (API, scheduler, extractor, loader as
separate processes on RabbitMQ with PostgreSQL metadata), runs every case and the
baselines that are installed, prints a table and writes it as JSON to ``bench-results/``.
The case ``compare_pg_mysql`` times ``datamig compare`` of equal PostgreSQL and MariaDB tables
against ``count(*)`` + a full scan of both (:mod:`bench.compare_bench`, its own tables).
``--shapes`` adds a narrow and a wide table (:mod:`bench.shapes`), each PG→PG truncate_load
against its own COPY pipes. Each case's time is broken down by phase from the services'
``datamig_phase_seconds`` (:mod:`bench.breakdown`), and a goals table closes the output.
No assertions on time: this is a measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from bench import baselines, breakdown, data, shapes
from bench.report import GOALS, Result, goal_ratio, render, render_goals, render_latency, write_json
from bench.runner import BenchStack

CASES = ("pg_pg_truncate", "mysql_pg_truncate", "pg_mysql_truncate", "pg_pg_upsert", "pg_pg_sync_delete",
         "dispatch_1row", "dispatch_1row_single", "compare_pg_mysql")
EXTRA_CASES = ("pg_pg_truncate_verify_none", "pg_pg_truncate_verify_checksum")  # only when named in --cases
SHAPE_CASES = {s.case: s for s in shapes.SHAPES.values() if s.name != "standard"}
LATENCY_RUNS = 20
FLOORS_KEYED = "floors_keyed"  # one baseline job giving the three keyed floors below
KEYED_FLOORS = ("floor_truncate_sql", "floor_upsert_sql", "floor_sync_delete_sql")
SQL = "SELECT id, qty, big, price, ratio, active, name, note, day, at FROM bench_src"


def _baseline(name: str, fn, *args) -> tuple[str, float | None, str]:  # type: ignore[no-untyped-def]
    try:
        seconds = fn(*args)
        return name, seconds, "" if seconds is not None else "not installed"
    except Exception as exc:  # noqa: BLE001 - a baseline that cannot run is reported, not fatal
        return name, None, " ".join(str(exc).split())[:300]


def run_baselines(wanted: set[str], shape_names: list[str], rows: int) -> dict[str, tuple[float | None, str]]:
    jobs: list = []
    if "standard" in shape_names:
        jobs += [("psql_copy_pipe", baselines.psql_pipe), ("psql_copy_pipe_binary", baselines.psql_pipe_binary),
                 ("copy_file_load_data", baselines.file_load_data), ("pgloader_mysql_pg", baselines.pgloader),
                 ("rabbitmq_pipe_binary", baselines.rabbitmq_pipe), ("mariadb_psql_pipe", baselines.mariadb_psql_pipe),
                 (FLOORS_KEYED, baselines.floors_keyed, rows),
                 ("ingestr_mysql_pg", baselines.ingestr, "mysql"), ("ingestr_pg_pg", baselines.ingestr, "postgresql"),
                 ("sling_mysql_pg", baselines.sling, "mysql"), ("sling_pg_pg", baselines.sling, "postgresql")]
    for shape in (shapes.SHAPES[n] for n in shape_names if n != "standard"):
        jobs += [(f"psql_copy_pipe_{shape.name}", baselines.psql_pipe, shape.source, shape.ddl),
                 (f"psql_copy_pipe_binary_{shape.name}", baselines.psql_pipe_binary, shape.source, shape.ddl)]
    out = {}
    for name, fn, *args in jobs:
        if wanted and name not in wanted and not (name == FLOORS_KEYED and wanted & set(KEYED_FLOORS)):
            continue
        print(f"baseline {name} ...", flush=True)
        if name == FLOORS_KEYED:  # three figures from one preparation
            try:
                for floor, seconds in fn(*args).items():
                    out[floor] = (seconds, "")
                    print(f"  {floor} {seconds:.1f} s", flush=True)
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                out.update({floor: (None, " ".join(str(exc).split())[:300]) for floor in KEYED_FLOORS})
                print(f"  n/a {out[KEYED_FLOORS[0]][1]}", flush=True)
            continue
        _, seconds, note = _baseline(name, fn, *args)
        out[name] = (seconds, note)
        print(f"  {f'{seconds:.1f} s' if seconds is not None else 'n/a'} {note}", flush=True)
    return out


def run_case(stack: BenchStack, case: str, rows: int) -> dict:
    if case in SHAPE_CASES:
        shape = SHAPE_CASES[case]
        shapes.empty(shape)
        return stack.run(source="pg", sql=shape.select, dest="pg", table=shape.dest, mode="truncate_load")
    if case == "pg_pg_truncate":
        data.pg_empty("bench_dst")
        return stack.run(source="pg", sql=SQL, dest="pg", table="bench_dst", mode="truncate_load")
    if case == "mysql_pg_truncate":
        data.pg_empty("bench_dst")
        return stack.run(source="mysql", sql=SQL, dest="pg", table="bench_dst", mode="truncate_load")
    if case == "pg_mysql_truncate":
        data.my_empty("bench_dst")
        return stack.run(source="pg", sql=SQL, dest="mysql", table="bench_dst", mode="truncate_load")
    if case.startswith("pg_pg_truncate_verify_"):
        data.pg_empty("bench_dst")
        return stack.run(source="pg", sql=SQL, dest="pg", table="bench_dst", mode="truncate_load",
                         verify=case.rsplit("_", 1)[1])
    mode = case.removeprefix("pg_pg_")
    data.pg_existing("bench_dst", rows)
    return stack.run(source="pg", sql=SQL, dest="pg", table="bench_dst", mode=mode)


def verify(case: str, rows: int) -> str:
    """Check the destination after a run (outside the timing): row count, and for PostgreSQL → PostgreSQL
    every row equal to its source row."""
    expected = rows + rows // 10 if case == "pg_pg_upsert" else rows
    engine = data.my() if case == "pg_mysql_truncate" else data.pg()
    with engine.connect() as conn:
        count = conn.exec_driver_sql("SELECT count(*) FROM bench_dst").scalar_one()
        differ = 0
        if case.startswith("pg_pg"):
            differ = conn.exec_driver_sql("SELECT count(*) FROM bench_src s JOIN bench_dst d USING (id) "
                                          "WHERE s IS DISTINCT FROM d").scalar_one()
    engine.dispose()
    if count != expected or differ:
        return f"WRONG: {count} rows (expected {expected}), {differ} differ from the source"
    return "ok" if case.startswith("pg_pg") else "count ok"


def run_one(stack: BenchStack, case: str, rows: int, source_mb: float, base: dict) -> Result:
    print(f"case {case} ...", flush=True)
    if case == "compare_pg_mysql":
        return compare_case(rows, source_mb, base)
    execution = run_case(stack, case, rows)
    result = Result.of(case, execution, rows=rows, source_mb=source_mb)
    check_rows = shapes.verify(SHAPE_CASES[case], rows) if case in SHAPE_CASES else verify(case, rows)
    result.verified = check_rows if execution["status"] == "completed" else "-"
    check = execution.get("verification") or {}
    if check.get("method"):  # the loader's own check before COMMIT (job option verify)
        result.verified += f"; verify {check['method']} {check.get('outcome')} in {check.get('seconds')} s"
    print(f"  {result.status} {result.wall_s:.1f} s rss {result.rss_mb} destination {result.verified}", flush=True)
    if execution["status"] != "completed":
        print(f"  error: {execution.get('error')}\n{stack.logs()[-3000:]}", flush=True)
    return result


def compare_case(rows: int, source_mb: float, base: dict) -> Result:
    """``datamig compare`` of equal PostgreSQL and MariaDB tables (bench.compare_bench); its reference,
    ``count_scan_pg_mysql`` (count(*) + full scan on both sides), is added to the baselines."""
    from bench.compare_bench import measure

    baseline, report = measure(rows)
    base["count_scan_pg_mysql"] = (round(baseline, 2), "count(*) + full scan to the client, both sides")
    wall = float(report["seconds"])
    result = Result(case="compare_pg_mysql", status="completed", wall_s=round(wall, 2), duration_s=round(wall, 2),
                    rows=rows, rows_per_s=round(rows / wall), mb_per_s=round(source_mb / wall, 1),
                    verified="equal" if report["equal"] else f"WRONG: {report}"[:300])
    print(f"  compare {wall:.1f} s, count(*) + scan {baseline:.1f} s, ratio {wall / baseline:.2f}", flush=True)
    return result


def median_result(runs: list[Result]) -> Result:
    """The run with the median wall time; peak RSS is the highest of all runs; every sample is kept."""
    ordered = sorted(runs, key=lambda r: r.wall_s)
    chosen = ordered[(len(ordered) - 1) // 2]
    chosen.samples_s = [r.wall_s for r in runs]
    chosen.rss_mb = {n: max(r.rss_mb.get(n, 0) for r in runs) for n in chosen.rss_mb}
    if any(r.status != "completed" for r in runs):
        chosen.status = next(r.status for r in runs if r.status != "completed")
    return chosen


def median_baselines(runs: list[dict[str, tuple[float | None, str]]]) -> dict[str, tuple[float | None, str]]:
    out: dict[str, tuple[float | None, str]] = {}
    for name in (runs[0] if runs else {}):
        seconds = sorted(r[name][0] for r in runs if r.get(name, (None, ""))[0] is not None)  # type: ignore[misc]
        note = runs[0][name][1]
        if len(runs) > 1 and seconds:
            note = (note + " " if note else "") + f"samples {', '.join(f'{x:.1f}' for x in seconds)}"
        out[name] = (seconds[(len(seconds) - 1) // 2] if seconds else None, note)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="rows in the standard source table (default 1,000,000)")
    parser.add_argument("--shapes", default="standard,narrow,wide",
                        help="comma list of standard (10 columns: every case), narrow (2 integer columns: "
                             "narrow_pg_pg_truncate), wide (100 columns: wide_pg_pg_truncate); default all three")
    parser.add_argument("--narrow-rows", type=int, default=shapes.SHAPES["narrow"].default_rows,
                        help="rows of the narrow table (default 10,000,000)")
    parser.add_argument("--wide-rows", type=int, default=shapes.SHAPES["wide"].default_rows,
                        help="rows of the wide table (default 200,000)")
    parser.add_argument("--cases", default="",
                        help=f"comma list of {', '.join(CASES + EXTRA_CASES + tuple(SHAPE_CASES))} "
                             "(default: every case of the chosen shapes, without the verify_* ones)")
    parser.add_argument("--baselines", default="all", help="'all', 'none' or a comma list of baseline names")
    parser.add_argument("--batch-rows", type=int, default=0, help="DM_BATCH_ROWS for the services (0: default)")
    parser.add_argument("--tuned", action="store_true",
                        help="run the services with tuned settings (50,000-row batches, 0.1 s poll, 2 s heartbeat) "
                             "instead of the defaults; the results are labelled 'tuned'")
    parser.add_argument("--general-path", action="store_true",
                        help="run the services with DM_BULK_TEXT=false (every batch as Python rows)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds to run; ratios are medians of the per-round ratios (default 3)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the source tables even when present")
    parser.add_argument("--out", default="bench-results", help="directory for the JSON results")
    parser.add_argument("--label", default="", help="a label stored with the results")
    parser.add_argument("--bad-rows", choices=("check", "null"), nargs="?", const="check",
                        help="instead: row isolation, 60%% interleaved bad rows (CHECK or NOT NULL) through LoadSession "
                             "into PostgreSQL and MariaDB, every mode (--rows defaults to 100,000 here)")
    args = parser.parse_args(argv)
    if args.bad_rows:
        from bench.bad_rows import bench_bad_rows
        rows = args.rows if "--rows" in (argv if argv is not None else sys.argv) else 100_000
        results = bench_bad_rows(rows, bad_kind=args.bad_rows)
        return 0 if all(r["exact"] for r in results) else 1

    shape_names = [s for s in args.shapes.split(",") if s]
    if set(shape_names) - set(shapes.SHAPES):
        parser.error(f"unknown shapes: {', '.join(sorted(set(shape_names) - set(shapes.SHAPES)))}")
    cases = [c for c in args.cases.split(",") if c] or [
        *(CASES if "standard" in shape_names else ()), *(s.case for s in SHAPE_CASES.values() if s.name in shape_names)]
    unknown = set(cases) - set(CASES) - set(EXTRA_CASES) - set(SHAPE_CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    shape_names = [n for n in shape_names if n == "standard" or shapes.SHAPES[n].case in cases]
    rows_of = {"narrow": args.narrow_rows, "wide": args.wide_rows}
    source_mb = 0.0  # the compare case builds its own tables
    mb_of: dict[str, float] = {}
    if set(cases) - {"compare_pg_mysql"} - set(SHAPE_CASES) or (args.baselines != "none" and "standard" in shape_names):
        print(f"building bench_src with {args.rows:,} rows ...", flush=True)
        started = time.perf_counter()
        mariadb = any("mysql" in c for c in cases) or (args.baselines != "none" and (  # MariaDB's table when read
            args.baselines == "all" or any(m in args.baselines for m in ("mysql", "load_data"))))
        data.build_sources(args.rows, rebuild=args.rebuild, mariadb=mariadb)
        source_mb = data.source_megabytes()
        print(f"  ready in {time.perf_counter() - started:.1f} s ({source_mb:.0f} MB as COPY text)", flush=True)
    for case, shape in SHAPE_CASES.items():
        if case in cases:
            print(f"building {shape.source} with {rows_of[shape.name]:,} rows in PostgreSQL ...", flush=True)
            started = time.perf_counter()
            shapes.build(shape, rows_of[shape.name], rebuild=args.rebuild)
            mb_of[case] = shapes.megabytes(shape)
            print(f"  ready in {time.perf_counter() - started:.1f} s ({mb_of[case]:.0f} MB as COPY text)", flush=True)

    wanted = set() if args.baselines in ("all", "none") else set(args.baselines.split(","))
    env = {"DM_BATCH_ROWS": str(args.batch_rows)} if args.batch_rows else {}
    if args.general_path:
        env["DM_BULK_TEXT"] = "false"
    base_runs: list[dict[str, tuple[float | None, str]]] = []
    case_runs: dict[str, list[Result]] = {c: [] for c in cases}
    compared: dict[str, tuple[float | None, str]] = {}  # the compare case's own baseline
    stack = BenchStack(tuned=args.tuned, env=env)
    latency: list[float] = []
    latency_single: list[float] = []
    try:
        if set(cases) - {"compare_pg_mysql", "dispatch_1row_single"}:
            stack.start()
        for round_no in range(1, args.repeat + 1):  # rounds interleave baselines and cases: drift hits both
            if args.repeat > 1:
                print(f"-- round {round_no} of {args.repeat}", flush=True)
            if args.baselines != "none" and (round_no == 1 or wanted):
                base_runs.append(run_baselines(wanted, shape_names, args.rows))
                wanted = {n for n, (seconds, _) in base_runs[0].items() if seconds is not None}  # no retrying
            for case in cases:
                if case == "dispatch_1row":
                    print(f"case {case} ({LATENCY_RUNS} executions) ...", flush=True)
                    latency += stack.latency(runs=LATENCY_RUNS)
                    continue
                if case == "dispatch_1row_single":  # its own stack: datamig serve all, SQLite metadata
                    from bench.single import single_process_latency
                    print(f"case {case} ({LATENCY_RUNS} executions, single process) ...", flush=True)
                    latency_single += single_process_latency(runs=LATENCY_RUNS, env=env)
                    continue
                rows = rows_of[SHAPE_CASES[case].name] if case in SHAPE_CASES else args.rows
                case_runs[case].append(run_one(stack, case, rows, mb_of.get(case, source_mb), compared))
    finally:
        stack.stop()
    base = {**median_baselines(base_runs), **compared}
    results = [median_result(runs) for case, runs in case_runs.items() if runs]
    by_case = {r.case: r for r in results}
    for r in results:
        if r.case in GOALS:
            r.ratio = goal_ratio(r.case, GOALS[r.case][0], by_case, base, case_runs, base_runs)[1]

    print()
    print(("settings: TUNED (not what users run)\n" if args.tuned else "settings: defaults\n") + render(results, base))
    if latency:
        print(render_latency(latency))
    if latency_single:
        print(render_latency(latency_single).replace("dispatch_1row:", "dispatch_1row_single:", 1))
    print()
    print(breakdown.render([(r.case, r.phases, r.wall_s, r.dispatch_s) for r in results if r.phases]))
    print()
    print(f"goals of issue #19 ({'TUNED settings' if args.tuned else 'defaults'}; ratios: median of "
          f"{args.repeat} round(s); load average {Path('/proc/loadavg').read_text().split()[0]})")
    goals = render_goals(results, base, case_runs, base_runs, latency, latency_single)
    print(goals)
    meta = {"rows": args.rows, "shapes": shape_names, "narrow_rows": args.narrow_rows, "wide_rows": args.wide_rows, "source_mb": round(source_mb, 1), "label": args.label, "repeat": args.repeat,
            "settings": "tuned" if args.tuned else "defaults", "dispatch_ms": [round(x, 1) for x in latency],
            "dispatch_single_ms": [round(x, 1) for x in latency_single],
            "path": "general" if args.general_path else "fast", "goals": goals.splitlines(),
            "python": platform.python_version(), "machine": platform.node()}
    path = write_json(Path(args.out), results, base, meta)
    print(f"\nwritten to {path}")
    return 0 if all(r.status == "completed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
