"""The benchmark's arithmetic: phase deltas from /metrics scrapes, per-round ratio medians, the goals table."""
from __future__ import annotations

from bench import breakdown
from bench.report import Result, goal_ratio, median, render_goals, round_ratios

EXPOSITION = """# HELP datamig_phase_seconds Exclusive seconds spent in a phase.
# TYPE datamig_phase_seconds histogram
datamig_phase_seconds_bucket{le="+Inf",mode="truncate_load",phase="load",service="loader"} 3.0
datamig_phase_seconds_count{mode="truncate_load",phase="load",service="loader"} 3.0
datamig_phase_seconds_sum{mode="truncate_load",phase="load",service="loader"} 4.5
datamig_phase_seconds_sum{mode="upsert",phase="load",service="loader"} 1.5
datamig_phase_seconds_sum{mode="upsert",phase="merge",service="loader"} 2.0
datamig_phase_seconds_sum{mode="upsert",phase="extract",service="extractor"} 7.0
# HELP datamig_batch_load_seconds Time to stage and merge one batch.
# TYPE datamig_batch_load_seconds histogram
datamig_batch_load_seconds_sum{engine="postgresql",mode="upsert"} 99.0
"""


def _result(case: str, wall: float, status: str = "completed") -> Result:
    return Result(case=case, status=status, wall_s=wall, duration_s=wall, rows=1_000_000, rows_per_s=1.0, mb_per_s=1.0)


def test_parse_sums_the_phase_histogram_over_modes_and_ignores_other_metrics():
    sums = breakdown.parse(EXPOSITION)
    assert sums == {("loader", "load"): 6.0, ("loader", "merge"): 2.0, ("extractor", "extract"): 7.0}


def test_delta_is_the_growth_between_two_scrapes_and_drops_phases_that_did_not_move():
    before = {("loader", "load"): 6.0, ("loader", "merge"): 2.0}
    after = {("loader", "load"): 9.25, ("loader", "merge"): 2.0, ("extractor", "extract"): 1.5}
    assert breakdown.delta(before, after) == {("loader", "load"): 3.25, ("extractor", "extract"): 1.5}


def test_as_json_groups_by_service_in_phase_order():
    sums = {("loader", "commit"): 0.1, ("loader", "setup"): 0.2, ("extractor", "extract"): 1.0}
    assert breakdown.as_json(sums) == {"extractor": {"extract": 1.0}, "loader": {"setup": 0.2, "commit": 0.1}}
    assert list(breakdown.as_json(sums)["loader"]) == ["setup", "commit"]


def test_render_breakdown_prints_a_line_per_service_with_its_busy_total():
    text = breakdown.render([("pg_pg_truncate", {"loader": {"load": 1.25, "commit": 0.25}}, 3.0, 0.04)])
    loader = next(line for line in text.splitlines() if line.split()[:2] == ["pg_pg_truncate", "loader"])
    assert loader.split()[-2:] == ["1.50", "3.0"]
    assert "queued -> started 0.04 s" in text


def test_median_takes_the_middle_and_the_lower_middle_of_an_even_count():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.0


def test_round_ratios_pair_each_round_with_the_same_round_of_the_reference():
    case_runs = {"pg_pg_truncate": [_result("pg_pg_truncate", 4.0), _result("pg_pg_truncate", 6.0),
                                    _result("pg_pg_truncate", 5.0, status="failed")],
                 "pg_pg_upsert": [_result("pg_pg_upsert", 6.0), _result("pg_pg_upsert", 6.0)]}
    base_runs = [{"psql_copy_pipe": (2.0, "")}, {"psql_copy_pipe": (4.0, "")}, {"psql_copy_pipe": (1.0, "")}]
    assert round_ratios("pg_pg_truncate", "psql_copy_pipe", case_runs, base_runs) == [2.0, 1.5]  # failed round left out
    assert round_ratios("pg_pg_upsert", "case:pg_pg_truncate", case_runs, base_runs) == [1.5, 1.0]


def test_goal_ratio_takes_the_fastest_reference_and_the_median_of_round_ratios():
    # Given three rounds where pgloader's median (10 s) beats ingestr's (12 s)
    runs = [_result("mysql_pg_truncate", w) for w in (6.0, 5.0, 9.0)]
    base_runs = [{"pgloader_mysql_pg": (p, ""), "ingestr_mysql_pg": (i, "")}
                 for p, i in ((10.0, 12.0), (10.0, 12.0), (9.0, 12.0))]
    base = {"pgloader_mysql_pg": (10.0, ""), "ingestr_mysql_pg": (12.0, "")}
    results = {"mysql_pg_truncate": runs[0]}
    ref, ratio, samples = goal_ratio("mysql_pg_truncate", ("pgloader_mysql_pg", "ingestr_mysql_pg"), results, base,
                                     {"mysql_pg_truncate": runs}, base_runs)
    # Then pgloader is the reference and the ratio is the median of 0.6, 0.5, 1.0
    assert ref == "pgloader_mysql_pg"
    assert samples == [0.6, 0.5, 1.0]
    assert ratio == 0.6


def test_goal_ratio_is_none_without_the_reference():
    results = {"pg_pg_truncate": _result("pg_pg_truncate", 3.0)}
    assert goal_ratio("pg_pg_truncate", ("psql_copy_pipe",), results, {}, {}, [])[1] is None


def test_render_goals_prints_pass_fail_and_unmeasured_lines():
    truncate = _result("pg_pg_truncate", 3.0)
    truncate.rss_mb = {"extractor": 120.0, "loader": 150.0, "scheduler": 90.0}
    narrow = _result("narrow_pg_pg_truncate", 20.0)
    narrow.rows, narrow.rss_mb = 10_000_000, {"extractor": 130.0, "loader": 210.0}
    results = [truncate, narrow]
    case_runs = {"pg_pg_truncate": [truncate], "narrow_pg_pg_truncate": [narrow]}
    base_runs = [{"psql_copy_pipe": (2.8, ""), "psql_copy_pipe_narrow": (10.0, "")}]
    base = {"psql_copy_pipe": (2.8, ""), "psql_copy_pipe_narrow": (10.0, "")}
    text = render_goals(results, base, case_runs, base_runs, [120.0, 200.0, 140.0], [300.0, 160.0, 170.0])
    lines = {line[:52].strip(): line[52:].split() for line in text.splitlines()[1:]}
    assert lines["PG->PG truncate_load <= 1.15 x psql text COPY pipe"][:3] == ["PASS", "ratio", "1.07"]
    assert lines["narrow (2 int cols) <= 1.5 x its text pipe"][:3] == ["FAIL", "ratio", "2.00"]
    assert lines["MariaDB->PG <= 0.6 x best of pgloader, ingestr"][0] == "-"
    assert lines["1-row execute -> completed <= 150 ms (distributed)"][:3] == ["PASS", "median", "140"]
    assert lines["1-row execute -> completed <= 150 ms (one process)"][:3] == ["FAIL", "median", "170"]
    assert lines["peak RSS of each worker <= 200 MB, 1M..10M rows"][:3] == ["FAIL", "max", "210"]


def test_render_goals_prints_the_floor_under_the_goal_it_bounds():
    upsert, truncate = _result("pg_pg_upsert", 7.8), _result("pg_pg_truncate", 2.6)
    mysql = _result("mysql_pg_truncate", 5.6)
    results = [upsert, truncate, mysql]
    case_runs = {r.case: [r] for r in results}
    base = {"floor_truncate_sql": (2.4, ""), "floor_upsert_sql": (6.0, ""), "floor_sync_delete_sql": (None, "x"),
            "ingestr_mysql_pg": (4.5, ""), "pgloader_mysql_pg": (9.0, ""), "mariadb_psql_pipe": (3.6, ""),
            "psql_copy_pipe": (2.6, ""), "psql_copy_pipe_binary": (1.7, ""), "rabbitmq_pipe_binary": (1.87, "")}
    text = render_goals(results, base, case_runs, [base], [], [])
    rows = text.splitlines()
    under_upsert = rows[[i for i, line in enumerate(rows) if line.startswith("upsert")][0] + 1]
    assert under_upsert.split()[:2] == ["floor:", "PG"]
    assert "ratio 2.50 (floor_upsert_sql 6.0 s vs floor_truncate_sql 2.4 s; the goal is below this floor)" in under_upsert
    under_mysql = rows[[i for i, line in enumerate(rows) if line.startswith("MariaDB->PG")][0] + 1]
    assert "ratio 0.80 (mariadb_psql_pipe 3.6 s vs ingestr_mysql_pg 4.5 s; the goal is below this floor)" in under_mysql
    assert not any("floor_sync_delete_sql" in line for line in rows)  # not measured: no floor line
    text_goal = [i for i, line in enumerate(rows) if line.startswith("PG->PG truncate_load <= 1.15 x psql text")][0]
    assert not rows[text_goal + 1].lstrip().startswith("floor:")  # the relay bounds the binary goal only
    under_binary = rows[text_goal + 2]
    assert "ratio 1.10 (rabbitmq_pipe_binary 1.9 s vs psql_copy_pipe_binary 1.7 s)" in under_binary  # goal above it
