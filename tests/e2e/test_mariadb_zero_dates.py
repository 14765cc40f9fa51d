"""MariaDB zero and invalid dates through the running services, as a user sees them in the history.

Given a MariaDB table written with ALLOW_INVALID_DATES, when a job copies it into
PostgreSQL, then by default the rows holding such dates fail naming column and value;
with ``zero_dates: "null"`` (on the job, or as the source project's option) they arrive
as NULL and the execution's ``warnings`` count them.
"""
from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, query, running_stack

pytestmark = pytest.mark.e2e
ROWS = [(1, "0000-00-00", "0000-00-00 00:00:00"), (2, "2021-02-30", "2021-01-01 00:00:00"),
        (3, "2021-03-01", "2021-00-00 10:00:00"), (4, "2021-03-02", "2021-03-02 12:00:00")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    try:
        src, dst = dbs.mysql(), dbs.pg()
        with connect(src) as conn:
            conn.exec_driver_sql("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
            conn.exec_driver_sql("CREATE TABLE events (id INT PRIMARY KEY, d DATE, at DATETIME)")
            for row in ROWS:
                conn.exec_driver_sql("INSERT INTO events VALUES (%s, %s, %s)", row)
        with connect(dst) as conn:
            for table in ("kept", "nulled", "by_project"):
                conn.exec_driver_sql(f"CREATE TABLE {table} (id int PRIMARY KEY, d date, at timestamp)")
        with running_stack(tmp_path_factory.mktemp("zerodates"), dbs.pg(), unique_name("dmzero")) as stack:
            client = Client(stack)
            u = make_url(src)
            body = {"engine": "mysql", "host": u.host, "port": u.port, "database": u.database,
                    "username": u.username, "password": u.password or ""}
            projects = {"maria": client.project("Maria", src), "pg": client.project("Warehouse", dst)}
            r = client.http.post("/api/projects", json={**body, "name": "Maria (null dates)",
                                                        "options": {"zero_dates": "null"}})
            assert r.status_code == 201, r.text
            projects["maria_null"] = r.json()["id"]
            yield client, dst, projects
            client.close()
    finally:
        dbs.drop_all()


def job(name: str, source: int, dst: int, table: str, **options: object) -> dict:
    return {"name": name, "steps": [{"name": "events", "project_id": source, "sql": "SELECT * FROM events"}],
            "destination": {"project_id": dst, "table": table, "mode": "insert_only"}, **options}


def test_zero_dates_fail_their_rows_by_default_naming_column_and_value(env) -> None:
    client, dst, projects = env
    execution = client.run(client.create_job(job("kept", projects["maria"], projects["pg"], "kept")))
    assert execution["status"] == "partial_success", execution
    assert execution["rows_failed"] == 3 and execution["rows_inserted"] == 1 and "zero_dates" not in execution["warnings"]
    errors = json.dumps(client.errors(execution["id"]), ensure_ascii=False)
    assert "column 'd'" in errors and "'0000-00-00'" in errors and "'2021-02-30'" in errors
    assert "column 'at'" in errors and "'2021-00-00 10:00:00'" in errors


@pytest.mark.parametrize("table, source, options", [("nulled", "maria", {"zero_dates": "null"}),
                                                    ("by_project", "maria_null", {})])
def test_zero_dates_null_loads_null_and_counts_warnings(env, table: str, source: str, options: dict) -> None:
    client, dst, projects = env
    execution = client.run(client.create_job(job(table, projects[source], projects["pg"], table, **options)))
    assert execution["status"] == "completed", execution
    assert execution["rows_inserted"] == 4 and execution["warnings"].get("zero_dates") == 4
    rows = query(dst, f"SELECT id, d::text, at::text FROM {table} ORDER BY id")
    assert rows == [(1, None, None), (2, None, "2021-01-01 00:00:00"), (3, "2021-03-01", None),
                    (4, "2021-03-02", "2021-03-02 12:00:00")]
