"""The transform on DuckDB over SQLite steps (no server): streams, spills, caps, errors, types."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.errors import Cancelled
from shared.jobspec import StepSpec
from shared.transform import TransformError, TransformLimits, Transformation
from shared.transform.arrowio import reader, rows_of, view_select, column_of, final_select
from shared.transform.engine import Engine
from shared.types import Column

SERIES = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "


@pytest.fixture
def source(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'src.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (id integer PRIMARY KEY, email text, orders integer, ltv real)")
        conn.exec_driver_sql("INSERT INTO users VALUES (1, 'Ann@X.org', 12, 10.5), (2, 'BOB@x.org', 3, NULL), "
                             "(3, 'Çé😀@x.org', 11, 7.25), (4, NULL, 0, 1)")
    yield engine
    engine.dispose()


def run(source: sa.Engine, transform: str, *sqls: str, batch_rows: int = 2,
        limits: TransformLimits | None = None) -> tuple[list[Column], list[list[tuple]]]:
    steps = [StepSpec(name=f"s{i}", project_id=1, sql=sql) for i, sql in enumerate(sqls, start=1)]
    with Transformation(steps, transform, {1: source}, batch_rows=batch_rows,
                        limits=limits or TransformLimits()) as t:
        columns = t.open()
        return columns, list(t.batches())


def test_the_issue_example_computes_every_column(source: sa.Engine) -> None:
    columns, batches = run(source, "SELECT id AS user_id, lower(email) AS email, coalesce(ltv, 0) AS ltv, "
                           "CASE WHEN orders > 10 THEN 'gold' ELSE 'std' END AS tier FROM @result1 ORDER BY id",
                           "SELECT * FROM users")
    assert [c.name for c in columns] == ["user_id", "email", "ltv", "tier"]
    assert [len(b) for b in batches] == [2, 2]  # batch_rows at a time
    assert [r for b in batches for r in b] == [(1, "ann@x.org", 10.5, "gold"), (2, "bob@x.org", 0.0, "std"),
                                               (3, "çé😀@x.org", 7.25, "gold"), (4, None, 1.0, "std")]


def test_a_join_of_two_results_and_an_aggregate(source: sa.Engine) -> None:
    _, batches = run(source, "SELECT r2.tier, count(*) AS n, sum(r1.orders) AS orders FROM @result1 r1 "
                     "JOIN @result2 r2 USING (id) GROUP BY r2.tier ORDER BY r2.tier",
                     "SELECT id, orders FROM users", "SELECT id, CASE WHEN id % 2 = 0 THEN 'even' ELSE 'odd' "
                     "END AS tier FROM @result1")
    assert batches == [[("even", 2, Decimal(3)), ("odd", 2, Decimal(23))]]


def test_a_join_larger_than_memory_spills_and_completes(source: sa.Engine) -> None:
    rows = 50_000
    limits = TransformLimits(memory_limit="16MB", max_temp_size="2GB", threads=1)
    _, batches = run(source, "SELECT count(*) AS n, sum(c) AS d FROM (SELECT a.h, count(*) AS c FROM @result1 a "
                     "JOIN @result2 b USING (i) GROUP BY a.h) AS g",
                     SERIES.format(rows=rows) + "SELECT i, hex(randomblob(100)) AS h FROM n",
                     SERIES.format(rows=rows) + "SELECT i, hex(randomblob(100)) AS h FROM n", limits=limits)
    assert batches == [[(rows, Decimal(rows))]]


def test_above_the_temporary_space_cap_the_transform_fails_naming_the_setting(source: sa.Engine) -> None:
    limits = TransformLimits(memory_limit="16MB", max_temp_size="1MB", threads=1)
    with pytest.raises(TransformError) as info:
        run(source, "SELECT a.i, a.h, b.h FROM @result1 a JOIN @result2 b USING (i) ORDER BY a.h",
            SERIES.format(rows=50_000) + "SELECT i, hex(randomblob(100)) AS h FROM n",
            SERIES.format(rows=50_000) + "SELECT i, hex(randomblob(100)) AS h FROM n", limits=limits)
    assert str(info.value).startswith("the transform: needs more temporary disk than DM_TRANSFORM_MAX_TEMP_SIZE=1MB")
    assert info.value.kind == "transform" and not info.value.transient


def test_a_sql_error_names_the_transform_and_the_result_as_the_user_wrote_it(source: sa.Engine) -> None:
    with pytest.raises(TransformError) as info:
        run(source, "SELECT nope FROM @result1", "SELECT * FROM users")
    assert str(info.value).startswith("the transform: Binder Error: Referenced column \"nope\" not found")
    assert "step 1" not in str(info.value)


def test_a_step_error_still_names_the_step(source: sa.Engine) -> None:
    with pytest.raises(Exception) as info:
        run(source, "SELECT * FROM @result1", "SELECT nope FROM users")
    assert "step 1 's1'" in str(info.value) and not isinstance(info.value, TransformError)


def test_the_engine_cannot_reach_files_or_change_its_limits(source: sa.Engine) -> None:
    with pytest.raises(TransformError, match="file system operations are disabled"):
        run(source, "SELECT * FROM read_csv('/etc/passwd'), @result1", "SELECT 1 AS id")
    with pytest.raises(TransformError, match="holds 2 statements"):
        run(source, "SET memory_limit = '64GB'; SELECT * FROM @result1", "SELECT 1 AS id")


def test_a_cancelled_transform_stops(source: sa.Engine) -> None:
    steps = [StepSpec(name="s1", project_id=1, sql="SELECT * FROM users")]
    with Transformation(steps, "SELECT * FROM @result1", {1: source}, limits=TransformLimits()) as t:
        t.open()
        t.cancel()
        with pytest.raises(Cancelled, match="the transform was cancelled"):
            list(t.batches())


def test_values_keep_their_types_through_a_rename() -> None:
    # Given every portable type with an awkward value and a NULL
    columns = [Column("d", "decimal", precision=38, scale=10), Column("ts", "timestamp"),
               Column("tz", "timestamptz"), Column("t", "text"), Column("u", "uuid"), Column("j", "json"),
               Column("b", "bytes"), Column("iv", "interval"), Column("dt", "date"), Column("tm", "time"),
               Column("f", "float"), Column("big", "bigint"), Column("ok", "bool")]
    berlin = dt.timezone(dt.timedelta(hours=2))
    row = (Decimal("1234567890123456789012345678.0123456789"), dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
           dt.datetime(2024, 3, 31, 2, 30, 0, 1, tzinfo=berlin), "naïve 😀 ‮", uuid.UUID(int=7),
           '{"a": [1, 2.5, null]}', b"\x00\xff", dt.timedelta(days=3, microseconds=7), dt.date(1, 1, 1),
           dt.time(23, 59, 59, 999999), -0.0, -2**63, True)
    engine = Engine(TransformLimits())
    try:
        engine.con.register("raw", reader(iter([[row, (None,) * len(row)]]), columns))
        rel = engine.con.sql(f"SELECT * FROM ({view_select(columns, 'raw')}) AS v")
        out_cols = [column_of(n, t) for n, t in zip(rel.columns, rel.types)]
        batch = rel.select(", ".join(final_select(rel.columns, rel.types))).to_arrow_table().to_batches()[0]
        got = rows_of(batch, out_cols)
    finally:
        engine.close()
    # Then the same values come out, with the same types, and NULLs stay NULL
    assert [(c.type, c.precision, c.scale) for c in out_cols] == [(c.type, c.precision, c.scale) for c in columns]
    assert got[1] == (None,) * len(row)
    assert got[0][:2] == row[:2] and got[0][2] == row[2] and got[0][2].utcoffset() == dt.timedelta(0)
    assert got[0][3:5] == row[3:5] and got[0][5].replace(" ", "") == row[5].replace(" ", "")
    assert got[0][6:] == row[6:] and str(got[0][10]) == "-0.0"


def test_a_decimal_without_precision_takes_the_scale_of_its_first_batch_and_never_rounds() -> None:
    from shared.transform.arrowio import settle_decimals, to_batch, arrow_schema

    columns = [Column("sum", "decimal"), Column("huge", "decimal")]
    rows = [(Decimal("12.50"), Decimal("1e40")), (Decimal("-0.125"), None), (None, None)]
    settled = settle_decimals(columns, rows)
    assert (settled[0].precision, settled[0].scale) == (38, 3)
    assert settled[1] == columns[1]  # 41 digits: travels as text, exact
    schema = arrow_schema(settled)
    assert to_batch(rows, settled, schema).column(0).to_pylist() == [Decimal("12.500"), Decimal("-0.125"), None]
    with pytest.raises(TransformError, match="column 'sum' \\(decimal\\) cannot be read"):
        to_batch([(Decimal("0.0001"), None)], settled, schema)  # a later batch needing more digits fails, by name


def test_a_transform_past_its_time_limit_is_stopped(source: sa.Engine) -> None:
    from shared.errors import TimedOut

    steps = [StepSpec(name="s1", project_id=1, sql="SELECT * FROM users")]
    endless = "SELECT count(*) AS n FROM @result1, range(1000000000000) AS r"
    with Transformation(steps, endless, {1: source}, statement_timeout_s=1.0, limits=TransformLimits()) as t:
        with pytest.raises(TimedOut, match="the transform ran past its time limit"):
            t.open()  # an aggregate computes while the result is started
            list(t.batches())


def test_a_projection_streams_the_last_result_instead_of_reading_it_all_first(source: sa.Engine) -> None:
    # Given a step of 200,000 rows read 500 at a time, and a transform that projects and filters it
    steps = [StepSpec(name="s1", project_id=1, sql=SERIES.format(rows=200_000) + "SELECT i, 'x' || i AS t FROM n")]
    with Transformation(steps, "SELECT i, upper(t) AS t FROM @result1 WHERE i % 2 = 0", {1: source}, batch_rows=500,
                        limits=TransformLimits(threads=1)) as t:
        t.open()
        batches = t.batches()
        first = next(batches)
        # Then the first rows come out while most of the source has not been read yet
        assert first[0] == (2, "X2") and len(first) == 500
        assert t.rows_read < 50_000, t.rows_read
        # and the whole result arrives in the end
        assert sum(len(b) for b in batches) + len(first) == 100_000 and t.rows_read == 200_000


def test_the_streamed_and_the_materialised_plans_give_the_same_rows_and_types(source: sa.Engine) -> None:
    from shared.transform import plan_transform

    step = "SELECT id, email, orders, ltv FROM users"
    streamed = "SELECT id, lower(email) AS email, ltv * 2 AS ltv2 FROM @result1 WHERE orders > 0 ORDER BY id"
    materialised = ("SELECT id, lower(email) AS email, ltv * 2 AS ltv2 FROM @result1 WHERE orders > 0 "
                    "AND id IN (SELECT id FROM @result1) ORDER BY id")
    steps = [StepSpec(name="s1", project_id=1, sql=step)]
    assert plan_transform(streamed, steps).streamed == 1 and plan_transform(materialised, steps).streamed is None
    assert run(source, streamed, step) == run(source, materialised, step)
    assert run(source, streamed, step)[1] == [[(1, "ann@x.org", 21.0), (2, "bob@x.org", None)], [(3, "çé😀@x.org", 14.5)]]


def test_a_transform_never_takes_the_bulk_text_path(source: sa.Engine) -> None:
    steps = [StepSpec(name="s1", project_id=1, sql="SELECT * FROM users")]
    with Transformation(steps, "SELECT id FROM @result1", {1: source}, limits=TransformLimits()) as t:
        t.open("copy_text")  # what the worker asks for when the destination has a bulk format
        assert t.bulk is False and [r for b in t.batches() for r in b] == [(1,), (2,), (3,), (4,)]


@pytest.mark.parametrize("name, value", [("DM_TRANSFORM_MEMORY_LIMIT", "lots"), ("DM_TRANSFORM_MAX_TEMP_SIZE", "-1GB"),
                                         ("DM_TRANSFORM_THREADS", "0")])
def test_bad_limits_are_refused_naming_the_variable(name: str, value: str) -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match=f"^{name}="):
        TransformLimits.from_env({name: value})
    assert TransformLimits.from_env({}) == TransformLimits(memory_limit="512MB", max_temp_size="10GB", threads=2)
