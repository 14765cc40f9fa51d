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


@pytest.mark.timeout(20)  # a cancel that waited for the 30 s statement (e.g. during a describe) would hang here
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


# -- issue 13: the database, not our tokenizer, keeps a step to one read-only query -----------------

EMOJI = "\U0001F600"


def pg_attack(marker) -> str:
    """The reported attack: PostgreSQL reads ``a😀$$`` as an identifier, a lexer that does not sees a quote."""
    return (f"SELECT 1 AS a{EMOJI}$$; COMMIT; BEGIN READ WRITE; CREATE TABLE pwned (x int); DELETE FROM t; "
            f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'; BEGIN; SELECT 1 AS b{EMOJI}$$")


@pytest.fixture
def fooled_tokenizer(monkeypatch) -> None:
    """Our tokenizer counts one statement that starts with SELECT, whatever the text (as a fooled one would)."""
    import shared.extract.runner as runner
    monkeypatch.setattr(runner, "statement_count", lambda sql, flavor="generic": 1)
    monkeypatch.setattr(runner, "first_word", lambda sql, flavor="generic": "select")


def pg_untouched(engine: sa.Engine, marker) -> None:
    assert rows_of(engine) == [1, 2]
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT to_regclass('pwned')").scalar() is None
    assert not marker.exists()


def test_the_tokenizer_itself_now_sees_the_emoji_attack(pg, tmp_path) -> None:
    with pytest.raises(SourceError, match="holds 8 statements"):
        extract(pg, pg_attack(tmp_path / "touched"))
    pg_untouched(pg, tmp_path / "touched")


def balanced_attack(marker) -> str:
    """The same, shaped to close the wrappers we put around a step (probe subquery, COPY)."""
    return (f"SELECT 1 AS a{EMOJI}$$) dm_probe LIMIT 0; DELETE FROM t; "
            f"COPY (SELECT 1) TO PROGRAM 'touch {marker}'; SELECT * FROM (SELECT 1 AS b{EMOJI}$$")


@pytest.mark.parametrize("path", ["stream", "probe", "bulk_pg_text", "bulk_mysql_csv", "pushdown_cte", "preview",
                                  "balanced_probe", "balanced_bulk_pg_text"])
def test_postgresql_refuses_a_second_statement_on_every_path(pg, tmp_path, fooled_tokenizer, path) -> None:
    from shared.extract import preview

    marker = tmp_path / "touched"
    balanced = path.startswith("balanced_")
    path = path.removeprefix("balanced_")
    steps = [StepSpec(name="writer", project_id=1, sql=(balanced_attack if balanced else pg_attack)(marker))]
    if path == "pushdown_cte":
        steps.append(StepSpec(name="reader", project_id=1, sql="SELECT * FROM @result1 r"))
    if path == "preview":
        answer = preview(steps, {1: pg})
        assert "more than one statement" in answer[0]["error"] and "step 1 'writer'" in answer[0]["error"]
    else:
        ext = Extraction(steps, {1: pg}, probe=path == "probe")
        refused = "more than one statement; a step is exactly one query|syntax error"
        with pytest.raises(SourceError, match=refused) as err:
            ext.open(path[5:] if path.startswith("bulk_") else None)
        ext.close()
        assert f"step {len(steps)} " in str(err.value)
    pg_untouched(pg, marker)


@pytest.mark.parametrize("sql", ["COMMIT", "SET ROLE NONE", "RESET ROLE"])
def test_postgresql_refuses_a_step_that_is_not_a_query(pg, fooled_tokenizer, sql) -> None:
    with pytest.raises(SourceError, match="a step must be a query that returns rows"):
        extract(pg, sql)


@pytest.mark.parametrize("bulk", [None, "pg_text"])
def test_mariadb_refuses_a_second_statement_in_one_request(my, fooled_tokenizer, bulk) -> None:
    ext = Extraction([StepSpec(name="writer", project_id=1, sql="SELECT 1 AS x; DELETE FROM t")], {1: my})
    with pytest.raises(SourceError, match="step 1 'writer'.*(syntax|SQL)"):
        ext.open(bulk)
    ext.close()
    assert rows_of(my) == [1, 2]


def test_mariadb_executable_comments_are_read_as_code(my) -> None:
    with my.begin() as c:
        c.exec_driver_sql("CREATE PROCEDURE dm_writer(x int) MODIFIES SQL DATA "
                          "BEGIN COMMIT; START TRANSACTION READ WRITE; INSERT INTO t VALUES (99); COMMIT; END")
    for sql in ("/*!CALL dm_writer((*/ SELECT 1 /*!)*/)", "/*M!CALL dm_writer((*/ SELECT 1 /*M!)*/)"):
        with pytest.raises(SourceError, match="starts with 'CALL'"):
            extract(my, sql)
    assert rows_of(my) == [1, 2]


@pytest.mark.parametrize("sql, target", [("SELECT id FROM t INTO OUTFILE '{f}'", "OUTFILE"),
                                         ("SELECT id FROM t LIMIT 1 INTO DUMPFILE '{f}'", "DUMPFILE"),
                                         ("SELECT id FROM t LIMIT 1 INTO @v", "@variable")])
def test_mariadb_select_into_is_refused(my, tmp_path, sql, target) -> None:
    out = f"/tmp/dm_{tmp_path.name}_out"
    with pytest.raises(SourceError, match=f"step 1 'writer': SELECT … INTO {target}"):
        extract(my, sql.format(f=out))
    import os
    assert not os.path.exists(out)


def test_a_mariadb_project_that_enables_multiple_statements_is_refused(mysql_url) -> None:
    from shared.errors import ConfigError

    engine = create_db_engine(mysql_url + "?client_flag=65536")  # CLIENT.MULTI_STATEMENTS
    with pytest.raises(ConfigError, match="multiple statements"):
        extract(engine, "SELECT 1 AS x")
    engine.dispose()


def test_postgresql_refuses_a_second_statement_in_a_result_moved_to_another_project(pg, my, tmp_path,
                                                                                    fooled_tokenizer) -> None:
    marker = tmp_path / "touched"
    steps = [StepSpec(name="writer", project_id=1, sql=pg_attack(marker)),
             StepSpec(name="joined", project_id=2, sql="SELECT * FROM @result1 r")]  # a temporary table on MariaDB
    with pytest.raises(SourceError, match="step 1 'writer'.*more than one statement"):
        with Extraction(steps, {1: pg, 2: my}) as ext:
            ext.open()
    pg_untouched(pg, marker)
