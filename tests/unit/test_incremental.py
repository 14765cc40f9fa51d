"""@watermark in the tokenizer, and the boundary rule of incremental jobs (shared.incremental)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from shared.extract.planner import build_sql, plan
from shared.extract.tokenizer import has_watermark, rewrite_references
from shared.incremental import (IncrementalSpec, Watermark, next_watermark, parse_value, remember_seen,
                                start_value)
from shared.jobspec import StepSpec

UTC = timezone.utc
T = datetime(2026, 12, 2, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("sql, flavor, expected", [
    ("select * from t where ts > @watermark", "generic", True),
    ("select * from t where ts > @WATERMARK", "postgresql", True),
    ("select * from t where ts>@watermark and id in (select id from @result1)", "generic", True),
    ("select '@watermark' from t", "generic", False),
    ("select 'it''s @watermark' from t", "postgresql", False),
    ("select $$ @watermark $$ from t", "postgresql", False),
    ("select 1 -- @watermark", "generic", False),
    ("select 1 # @watermark", "mysql", False),
    ("select /* @watermark /* nested */ still */ 1", "postgresql", False),
    ('select "@watermark" from t', "postgresql", False),
    ("select `@watermark` from t", "mysql", False),
    ('select "@watermark" from t', "mysql", False),  # a string in MySQL
    ("select [@watermark] from t", "mssql", False),
    ("select x@watermark, @@watermark, @watermarks, @watermark_2 from t", "generic", False),
    ("select /*! @watermark */ 1", "mysql", True),  # MySQL executable comment: code
])
def test_watermark_is_found_only_where_sql_has_it(sql: str, flavor: str, expected: bool) -> None:
    assert has_watermark(sql, flavor=flavor) is expected


def test_watermark_is_replaced_by_the_engines_reference_never_by_a_value() -> None:
    sql = "select '@watermark' x, ts from @result1 where ts > @watermark -- @watermark"
    out = rewrite_references(sql, {1: '"dm_result1"'}, watermark="@dm_watermark")
    assert out == "select '@watermark' x, ts from \"dm_result1\" where ts > @dm_watermark -- @watermark"
    with pytest.raises(KeyError):
        rewrite_references(sql, {1: "r"})


def test_watermark_in_an_inlined_earlier_step_is_replaced_too() -> None:
    steps = [StepSpec(name="a", project_id=1, sql="select id, ts from logs where ts > @watermark"),
             StepSpec(name="b", project_id=1, sql="select * from @result1 where id > 0")]
    sql = build_sql(steps, plan(steps, 2), {1: "r1"}, watermark="W")
    assert "ts > W" in sql and "@watermark" not in sql


def _stored(value: str | None, kind: str, seen: list | None = None) -> Watermark:
    return Watermark(value=value, kind=kind, seen=seen or [])


def test_a_time_watermark_stops_just_before_the_oldest_open_transaction() -> None:
    oldest = T - timedelta(seconds=5)
    assert next_watermark(_stored(None, "timestamptz"), kind="timestamptz", clock=T, oldest=oldest) \
        == oldest - timedelta(microseconds=1)
    assert next_watermark(_stored(None, "timestamptz"), kind="timestamptz", clock=T, oldest=None) \
        == T - timedelta(microseconds=1)
    naive = next_watermark(_stored(None, "timestamp"), kind="timestamp", clock=T, oldest=oldest)
    assert naive == datetime(2026, 12, 2, 0, 59, 54, 999999)  # naive: UTC
    assert next_watermark(_stored(None, "date"), kind="date", clock=T, oldest=None) == date(2026, 12, 1)


def test_a_watermark_never_moves_back() -> None:
    stored = _stored("2026-12-02 01:00:00+00:00", "timestamptz")
    assert next_watermark(stored, kind="timestamptz", clock=T, oldest=T - timedelta(hours=1)) \
        == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def test_an_integer_watermark_takes_the_largest_value_seen_before_every_open_transaction_began() -> None:
    seen = [[(T - timedelta(seconds=3)).isoformat(), 100], [(T - timedelta(seconds=1)).isoformat(), 150]]
    stored = _stored("50", "int", seen)
    assert next_watermark(stored, kind="int", clock=T, oldest=T - timedelta(seconds=2)) == 100
    assert next_watermark(stored, kind="int", clock=T, oldest=None) == 150
    assert next_watermark(stored, kind="int", clock=T, oldest=T - timedelta(seconds=4)) == 50  # held back
    assert next_watermark(_stored(None, "int"), kind="int", clock=T, oldest=None) is None  # nothing seen yet
    pairs = remember_seen(stored, seen_at=T, largest=170, new=100)
    assert pairs == [seen[1], [T.isoformat(), 170]]


@pytest.mark.parametrize("stored, spec, kind, expected", [
    ("2026-12-02 01:00:00+00:00", {"lag": "10 minutes"}, "timestamptz", datetime(2026, 12, 2, 0, 50, tzinfo=UTC)),
    ("2026-12-02", {"lag": "1 day"}, "date", date(2026, 12, 1)),
    ("500", {"lag": 20}, "int", 480),
    (None, {"initial": "2026-01-01"}, "date", date(2026, 1, 1)),
    (None, {"initial": 7}, "int", 7),
    (None, {}, "timestamp", None),  # the beginning
])
def test_the_bound_value_is_the_stored_watermark_minus_lag_else_initial(stored, spec, kind, expected) -> None:
    assert start_value(stored, IncrementalSpec(column="c", **spec), kind) == expected


def test_an_interval_lag_on_an_integer_column_is_refused() -> None:
    with pytest.raises(ValueError, match="is an interval but column 'id' is an integer"):
        IncrementalSpec(column="id", lag="5 minutes").lag_for("int")
    with pytest.raises(ValueError):
        parse_value("2026-01-01", "int")


def test_the_bound_inputs_take_the_oldest_running_statement_and_the_margins_for_time_columns_only() -> None:
    from shared.dialects.watermark import Horizon

    second, ms = timedelta(seconds=1), timedelta(milliseconds=1)
    h = Horizon(T, T - 5 * second, True, second, running=T - 9 * second, clock_margin=ms)
    assert h.inputs(times=True) == (T - ms, T - 9 * second)  # a statement stamping rows before InnoDB lists it
    assert Horizon(T, T - 5 * second, True, second, running=T - second).inputs(times=True) == (T, T - 6 * second)
    assert Horizon(T, None, True, second, running=None, clock_margin=ms).inputs(times=True) == (T - ms, None)
    assert h.inputs(times=False) == (T, T - 5 * second)  # integers: the listed start itself
