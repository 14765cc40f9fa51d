"""The watermark advances exactly when the destination commits (issue 15, guarantee 1 and 5).

A run that fails at the destination's COMMIT (a deferred constraint) and a loader killed before
loading leave the stored watermark where it was, and the next run catches up from it. A loader
killed right after COMMIT, before telling anyone, loses nothing: the scheduler's settlement
reads the watermark the load transaction wrote into the destination's ``datamig_state``, so the
next run starts after it and does not read those rows again.
"""
from __future__ import annotations

import pytest

from tests.conftest import AMQP_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, connect, query
from tests.e2e.kills import api_get, job_chain, kill_stack, settled_chain, wait

pytestmark = pytest.mark.e2e
SQL = "SELECT log_id, ts, payload FROM app_logs WHERE ts > @watermark"


@pytest.fixture
def services() -> None:
    require_service("PostgreSQL", PG_URL)
    require_service("RabbitMQ", AMQP_URL)


def _add_logs(url: str, first: int, last: int) -> None:
    with connect(url) as conn:
        conn.exec_driver_sql("INSERT INTO app_logs SELECT g, now() + g * interval '1 microsecond', "
                             f"'p' || g FROM generate_series({first}, {last}) g")


def _setup(client: Client, src: str, dst: str, **job: object) -> int:
    with connect(src) as conn:
        conn.exec_driver_sql("CREATE TABLE app_logs (log_id BIGINT PRIMARY KEY, ts TIMESTAMPTZ NOT NULL, payload TEXT)")
    with connect(dst) as conn:
        conn.exec_driver_sql("CREATE TABLE archive (log_id BIGINT PRIMARY KEY, ts TIMESTAMPTZ, payload TEXT, "
                             "CONSTRAINT one_payload UNIQUE (payload) DEFERRABLE INITIALLY DEFERRED)")
    return client.create_job({
        "name": unique_name("incr"), "max_retries": 0,
        "steps": [{"name": "logs", "project_id": client.project(unique_name("src"), src), "sql": SQL}],
        "destination": {"project_id": client.project(unique_name("dst"), dst), "table": "archive"},
        "incremental": {"column": "ts"}, **job})


def _watermark(client: Client, job_id: int) -> str | None:
    return client.http.get(f"/api/jobs/{job_id}").json()["watermark"]


def test_a_run_failing_at_commit_keeps_the_watermark_and_the_next_run_catches_up(
        services, pg_database, tmp_path, queue_prefix) -> None:
    metadata, src, dst = pg_database(), pg_database(), pg_database()
    stack = kill_stack(tmp_path, metadata, queue_prefix)
    client = Client(stack)
    try:
        job_id = _setup(client, src, dst)
        _add_logs(src, 1, 50)
        first = client.run(job_id)
        assert first["status"] == "completed" and first["rows_inserted"] == 50
        stored = _watermark(client, job_id)
        assert stored is not None and first["watermark_to"] == stored

        # Given rows 51..100, one of which breaks a constraint the destination checks at COMMIT
        _add_logs(src, 51, 100)
        with connect(dst) as conn:
            conn.exec_driver_sql("INSERT INTO archive VALUES (0, now(), 'p75')")
        failed = client.run(job_id)
        assert failed["status"] == "failed", failed
        assert failed["watermark_from"] == stored and failed["watermark_to"] is None
        assert _watermark(client, job_id) == stored
        assert query(dst, "SELECT count(*) FROM archive") == [(51,)]  # rolled back: 50 + the blocking row

        # When the blocking row is gone and the job runs again
        with connect(dst) as conn:
            conn.exec_driver_sql("DELETE FROM archive WHERE log_id = 0")
        _add_logs(src, 101, 110)
        again = client.run(job_id)
        assert again["status"] == "completed", again
        assert again["watermark_from"] == stored and again["rows_read"] == 60 and again["rows_inserted"] == 60
        assert query(dst, "SELECT count(*), min(log_id), max(log_id) FROM archive") == [(110, 1, 110)]
        assert _watermark(client, job_id) == again["watermark_to"] > stored
    finally:
        client.close()
        stack.stop()


def test_killed_loaders_lose_no_advance_and_repeat_no_row(services, pg_database, tmp_path, queue_prefix) -> None:
    metadata, src, dst = pg_database(), pg_database(), pg_database()
    # Given a loader that dies right after taking its load request (nothing committed)
    stack = kill_stack(tmp_path, metadata, queue_prefix, faults={"loader": "loader_after_request"})
    client = Client(stack)
    try:
        job_id = _setup(client, src, dst, max_retries=1)
        _add_logs(src, 1, 40)
        client.execute(job_id)
        wait(lambda: stack.procs["loader"].poll() is not None, timeout_s=60, what="the loader's exit", stack=stack)
        assert _watermark(client, job_id) is None
        # …and the next loader dies right after its COMMIT, before its event
        stack.start("loader2", "loader", env={"DM_TEST_FAULT": "loader_after_commit"})
        runs = wait(lambda: settled_chain(stack, job_id), timeout_s=90, what="a settled retry", stack=stack)
        assert stack.procs["loader2"].poll() == 137
        assert [(r["status"], r["attempt"]) for r in runs] == [("failed", 1), ("completed", 2)], runs
        assert runs[0]["watermark_to"] is None and runs[1]["watermark_from"] is None
        # Then the settlement recorded the advance the destination holds
        committed = runs[1]["watermark_to"]
        assert committed is not None and _watermark(client, job_id) == committed
        assert query(dst, "SELECT count(*) FROM archive") == [(40,)]

        # When new rows arrive and a healthy loader runs the job again, it starts after the advance
        stack.start("loader3", "loader")
        _add_logs(src, 41, 55)
        after = client.run(job_id)
        assert after["status"] == "completed" and after["watermark_from"] == committed
        assert (after["rows_read"], after["rows_inserted"], after["rows_skipped"]) == (15, 15, 0)
        assert query(dst, "SELECT count(*), count(DISTINCT log_id) FROM archive") == [(55, 55)]
        assert [e["id"] for e in job_chain(stack, job_id)][-1] == after["id"]
        assert api_get(stack, f"/api/jobs/{job_id}")["watermark"] == after["watermark_to"]
    finally:
        client.close()
        stack.stop()
