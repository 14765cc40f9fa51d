"""Verification before COMMIT through the running stack, as a user sees it in the history.

Given a MariaDB source and PostgreSQL/MariaDB destinations, a job with the default verify
(count) and one with ``verify: checksum`` show their verification in the execution; a
destination whose trigger alters a value fails the checksum run with the key in the error and
the verification, and the destination keeps its rows; failed rows (partial_success) still verify.
"""
from __future__ import annotations

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, query, running_stack

pytestmark = pytest.mark.e2e
SOURCE = [(1, "a", 10), (2, "b", 20), (3, None, 30), (4, "d", 40)]  # row 3 fails NOT NULL in the destination
DEST = "id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL, amount INTEGER"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    tmp = tmp_path_factory.mktemp("verify")
    try:
        urls = {"postgresql": dbs.pg(), "mysql": dbs.mysql()}
        with running_stack(tmp / "stack", dbs.pg(), unique_name("dmverify")) as stack:
            client = Client(stack)
            projects = {engine: client.project(f"{engine} db", url) for engine, url in urls.items()}
            with connect(urls["mysql"]) as conn:
                conn.exec_driver_sql("CREATE TABLE src (id INTEGER PRIMARY KEY, name VARCHAR(20), amount INTEGER)")
                conn.exec_driver_sql("INSERT INTO src VALUES " + ", ".join(
                    f"({i}, {'NULL' if n is None else repr(n)}, {a})" for i, n, a in SOURCE))
            yield client, urls, projects
            client.close()
    finally:
        dbs.drop_all()


def job(client: Client, projects: dict, engine: str, table: str, mode: str, **options: str) -> int:
    return client.create_job({
        "name": f"verify {engine} {table}", "max_retries": 0, **options,
        "steps": [{"name": "src", "project_id": projects["mysql"], "sql": "SELECT id, name, amount FROM src"}],
        "destination": {"project_id": projects[engine], "table": table, "mode": mode}})


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_default_and_checksum_verification_show_in_history_and_skip_failed_rows(env, engine: str) -> None:
    client, urls, projects = env
    for table in ("counted", "hashed"):
        with connect(urls[engine]) as conn:
            conn.exec_driver_sql(f"CREATE TABLE {table} ({DEST})")
    counted = job(client, projects, engine, "counted", "truncate_load")
    hashed = job(client, projects, engine, "hashed", "upsert", verify="checksum")
    assert client.http.get(f"/api/jobs/{counted}").json()["verify"] == "count"  # the default
    assert client.http.get(f"/api/jobs/{hashed}").json()["verify"] == "checksum"
    ids = [client.execute(counted), client.execute(hashed)]
    done = client.wait_all(ids)
    for eid, method in zip(ids, ("count", "checksum")):
        execution = done[eid]
        assert execution["status"] == "partial_success", execution
        assert execution["rows_failed"] == 1
        verification = execution["verification"]
        assert verification["method"] == method and verification["outcome"] == "passed", verification
        assert verification["rows_expected"] == 3 and verification["seconds"] >= 0
    assert query(urls[engine], "SELECT id FROM hashed ORDER BY id") == [(1,), (2,), (4,)]


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_trigger_altering_a_value_fails_checksum_verification_and_keeps_the_destination(env, engine: str) -> None:
    client, urls, projects = env
    with connect(urls[engine]) as conn:
        conn.exec_driver_sql(f"CREATE TABLE guarded ({DEST})")
        conn.exec_driver_sql("INSERT INTO guarded VALUES (9, 'old', 90)")
        if engine == "postgresql":
            conn.exec_driver_sql("CREATE FUNCTION bump() RETURNS trigger AS $$ BEGIN IF NEW.id = 2 THEN "
                                 "NEW.amount := NEW.amount + 1; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
            conn.exec_driver_sql("CREATE TRIGGER bump BEFORE INSERT ON guarded FOR EACH ROW EXECUTE FUNCTION bump()")
        else:
            conn.exec_driver_sql("CREATE TRIGGER bump BEFORE INSERT ON guarded FOR EACH ROW "
                                 "BEGIN IF NEW.id = 2 THEN SET NEW.amount = NEW.amount + 1; END IF; END")
    job_id = job(client, projects, engine, "guarded", "truncate_load", verify="checksum")
    execution = client.run(job_id)
    assert execution["status"] == "failed", execution
    assert execution["error"]["kind"] == "verification"
    assert "id=2" in execution["error"]["message"] and "nothing was committed" in execution["error"]["message"]
    verification = execution["verification"]
    assert verification["outcome"] == "failed" and verification["keys"] == [{"key": {"id": 2}, "problem": "different"}]
    assert (execution["rows_inserted"], execution["rows_deleted"]) == (0, 0)
    assert query(urls[engine], "SELECT id, name, amount FROM guarded") == [(9, "old", 90)]
