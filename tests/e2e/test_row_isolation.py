"""Bad rows, duplicate keys and failed-row history through the running stack.

PostgreSQL → MariaDB and → SQLite executions with the services as OS processes on
RabbitMQ and PostgreSQL metadata: what a user reads in the history (status, counts,
warnings, failed rows) must match what the destination holds.
"""
from __future__ import annotations

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, counts, query, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    tmp = tmp_path_factory.mktemp("isolation")
    try:
        urls = {"postgresql": dbs.pg(), "mysql": dbs.mysql(), "sqlite": f"sqlite:///{tmp / 'dest.sqlite'}"}
        with running_stack(tmp / "stack", dbs.pg(), unique_name("dmiso"), DM_LOADER_CONCURRENCY="2",
                           DM_EXTRACTOR_CONCURRENCY="2") as stack:
            client = Client(stack)
            projects = {engine: client.project(f"{engine} db", url) for engine, url in urls.items()}
            yield client, urls, projects
            client.close()
    finally:
        dbs.drop_all()


def job(client: Client, projects: dict, *, sql: str, dest: str, table: str, mode: str, **extra) -> int:
    return client.create_job({"name": unique_name("job"), "max_retries": 0,
                              "steps": [{"name": "read", "project_id": projects["postgresql"], "sql": sql}],
                              "destination": {"project_id": projects[dest], "table": table, "mode": mode,
                                              **extra}})


def test_150_consecutive_not_null_failures_stop_a_postgresql_to_mariadb_upsert(env) -> None:
    client, urls, projects = env
    # Given 300 PostgreSQL rows whose rows 51-200 have no name, and a MariaDB table holding one old row
    with connect(urls["postgresql"]) as conn:
        conn.exec_driver_sql("CREATE TABLE people (id bigint PRIMARY KEY, name text, amount int)")
        conn.exec_driver_sql("INSERT INTO people SELECT i, CASE WHEN i BETWEEN 51 AND 200 THEN NULL "
                             "ELSE 'n' || i END, i FROM generate_series(1, 300) i")
    with connect(urls["mysql"]) as conn:
        conn.exec_driver_sql("CREATE TABLE people (id BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL, amount INT)")
        conn.exec_driver_sql("INSERT INTO people VALUES (5000, 'before', 1)")
    # When it is upserted
    execution = client.run(job(client, projects, sql="SELECT id, name, amount FROM people ORDER BY id",
                               dest="mysql", table="people", mode="upsert"))
    # Then the run stops after 100 consecutive failures, rolled back: the destination is unchanged
    assert execution["status"] == "failed", execution
    assert execution["error"]["kind"] == "too_many_failures", execution
    assert query(urls["mysql"], "SELECT id, name FROM people") == [(5000, "before")]
    assert execution["rows_inserted"] == 0 and execution["rows_failed"] == 100
    errors = client.errors(execution["id"])  # the rows that made it stop are shown
    assert errors["failed_rows_total"] == 100
    assert [r["position"] for r in errors["failed_rows"]][:2] == [51, 52]


@pytest.mark.parametrize("dest, failing", [("mysql", [2, 3, 4, 5, 6, 7]), ("sqlite", [2, 5, 7])])
def test_nan_and_infinity_rows_fail_and_are_stored_in_the_history(env, dest: str, failing: list[int]) -> None:
    client, urls, projects = env
    # Given PostgreSQL rows with NaN and ±Infinity, which MariaDB cannot store at all and SQLite not as NaN
    table = unique_name("floats")
    with connect(urls["postgresql"]) as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id int PRIMARY KEY, f float8, r real, n numeric)")
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES (1, 1.5, 1.5, 1.5), (2, 'NaN', 1, 1), (3, 'Infinity', 1, 1),"
                             " (4, '-Infinity', 1, 1), (5, 1, 'NaN', 1), (6, 1, 'Infinity', 1), (7, 1, 1, 'NaN'),"
                             " (8, 2, 2, 2)")
    with connect(urls[dest]) as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, f DOUBLE PRECISION, r REAL, "
                             "n NUMERIC(20,5))")
    # When they are migrated
    execution = client.run(job(client, projects, sql=f"SELECT * FROM {table} ORDER BY id", dest=dest, table=table,
                               mode="insert_only"))
    # Then the rows fail, and each failed row is in the history with its values as text
    assert execution["status"] == "partial_success", execution
    assert execution["rows_failed"] == len(failing), execution
    assert "failed_rows_not_stored" not in execution["warnings"], execution  # (a superuser source also warns)
    errors = client.errors(execution["id"])
    assert errors["failed_rows_total"] == len(failing)
    assert [r["position"] for r in errors["failed_rows"]] == failing
    assert errors["failed_rows"][0]["values"]["f"] == "NaN" and "nan" in errors["failed_rows"][0]["error"].lower()
    if dest == "mysql":
        assert errors["failed_rows"][1]["values"]["f"] == "Infinity"


def test_keys_equal_under_the_destination_collation_are_failed_rows_not_a_silent_merge(env) -> None:
    client, urls, projects = env
    # Given four PostgreSQL rows whose keys MariaDB's utf8mb4_general_ci sees as two ('a'/'A', 'b'/'b ')
    table = unique_name("codes")
    with connect(urls["postgresql"]) as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (code text PRIMARY KEY, amount int)")
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES ('a', 1), ('A', 2), ('b', 3), ('b ', 4)")
    with connect(urls["mysql"]) as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, "
                             "amount INT)")
    # When they are upserted into an empty table
    execution = client.run(job(client, projects, sql=f"SELECT code, amount FROM {table} ORDER BY amount",
                               dest="mysql", table=table, mode="upsert"))
    # Then the first row of each key is written, the other two are failed rows, and the counts say so
    assert execution["status"] == "partial_success", execution
    assert (execution["rows_inserted"], execution["rows_updated"], execution["rows_failed"]) == (2, 0, 2)
    assert query(urls["mysql"], f"SELECT code, amount FROM {table} ORDER BY amount") == [("a", 1), ("b", 3)]
    errors = client.errors(execution["id"])
    assert [r["position"] for r in errors["failed_rows"]] == [2, 4]
    assert all("duplicate key" in r["error"] for r in errors["failed_rows"]), errors
