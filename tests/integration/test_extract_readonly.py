"""Source sessions are read-only, and a running extraction can be cancelled from another thread."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.errors import Cancelled, SourceError
from shared.extract import Extraction
from shared.jobspec import StepSpec

pytestmark = pytest.mark.integration


@pytest.fixture
def pg(pg_url: str) -> Iterator[sa.Engine]:
    engine = create_db_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (id int)")
        c.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
        c.exec_driver_sql("CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS "
                          "'INSERT INTO t VALUES (99) RETURNING id'")
    yield engine
    engine.dispose()


@pytest.fixture
def my(mysql_url: str) -> Iterator[sa.Engine]:
    engine = create_db_engine(mysql_url)
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE t (id int)")
        c.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
        c.exec_driver_sql("CREATE FUNCTION sneaky() RETURNS int MODIFIES SQL DATA "
                          "BEGIN INSERT INTO t VALUES (99); RETURN 1; END")
    yield engine
    engine.dispose()


def rows_of(engine: sa.Engine) -> list[int]:
    with engine.connect() as c:
        return sorted(r[0] for r in c.exec_driver_sql("SELECT id FROM t"))


def extract(engine: sa.Engine, sql: str) -> list[tuple]:
    with Extraction([StepSpec(name="writer", project_id=1, sql=sql)], {1: engine}) as ext:
        ext.open()
        return [r for b in ext.batches() for r in b]


@pytest.mark.parametrize("engine_name", ["pg", "my"])
def test_a_select_that_writes_through_a_function_fails_and_changes_nothing(engine_name, request) -> None:
    engine = request.getfixturevalue(engine_name)
    with pytest.raises(SourceError) as err:
        extract(engine, "SELECT sneaky() AS x")
    assert "step 1 'writer'" in str(err.value) and "read-only" in str(err.value)
    assert rows_of(engine) == [1, 2]


@pytest.mark.parametrize("engine_name", ["pg", "my"])
@pytest.mark.parametrize("sql", ["UPDATE t SET id = 5", "DELETE FROM t", "DROP TABLE t",
                                 "SELECT 1; DELETE FROM t", "SELECT 1; COMMIT; DELETE FROM t"])
def test_statements_that_write_are_refused_before_they_run(engine_name, sql, request) -> None:
    engine = request.getfixturevalue(engine_name)
    with pytest.raises(SourceError, match="step 1 'writer'"):
        extract(engine, sql)
    assert rows_of(engine) == [1, 2]


def test_a_data_modifying_cte_fails_on_postgresql(pg) -> None:
    with pytest.raises(SourceError, match="step 1 'writer'"):
        extract(pg, "WITH d AS (DELETE FROM t RETURNING id) SELECT * FROM d")
    assert rows_of(pg) == [1, 2]


@pytest.mark.parametrize("engine_name, sql", [("pg", "SELECT pg_sleep(30)"), ("my", "SELECT SLEEP(30)")])
def test_cancel_from_another_thread_stops_the_statement(engine_name, sql, request) -> None:
    engine = request.getfixturevalue(engine_name)
    ext = Extraction([StepSpec(name="slow", project_id=1, sql=sql)], {1: engine})
    timer = threading.Timer(0.5, ext.cancel)
    timer.start()
    try:
        with pytest.raises(Cancelled):
            ext.open()
    finally:
        timer.cancel()
        ext.close()


def test_statement_timeout_names_the_step(pg) -> None:
    from shared.errors import TimedOut

    ext = Extraction([StepSpec(name="slow", project_id=1, sql="SELECT pg_sleep(5)")], {1: pg},
                     statement_timeout_s=0.3)
    with pytest.raises(TimedOut, match="step 1 'slow'"):
        ext.open()
    ext.close()
