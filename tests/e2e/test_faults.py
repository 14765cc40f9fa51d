"""Faults a production deployment meets, on real processes, RabbitMQ and PostgreSQL.

Each test checks what an operator would: the destination is exactly as before until a
retry commits, the final table is exactly the source, and the history shows the chain.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from shared.topology import Topology
from shared.transport import create_transport
from tests.conftest import AMQP_URL, PG_URL, require_service
from tests.e2e.faults import (FAULT_SETTINGS, OLD_ROWS, SOURCE_ROWS, TcpProxy, chain, create_job, distributed, execute,
                              execution, make_destination, make_source, snapshot, wait_for)
from tests.fixtures.wire import run_request

pytestmark = pytest.mark.e2e
OLD = (OLD_ROWS, -OLD_ROWS, -OLD_ROWS * (OLD_ROWS + 1) // 2)
NEW = (SOURCE_ROWS, 1, SOURCE_ROWS * (SOURCE_ROWS + 1) // 2)


@pytest.fixture(scope="module")
def source(module_databases) -> str:
    """The 200,000-row source every test reads (none writes to it): made once per module."""
    require_service("PostgreSQL", PG_URL)
    require_service("RabbitMQ", AMQP_URL)
    src = module_databases.pg()
    make_source(src)
    return src


@pytest.fixture
def dbs(pg_database, source):
    """(metadata, source, destination): the metadata and destination databases are the test's own."""
    metadata, dst = pg_database(), pg_database()
    return metadata, source, dst


@pytest.fixture(scope="module")
def shared_stack(module_stacks):
    """One stack for the tests that kill or restart nothing and only need jobs of their own
    (each gets its own destination; job timeouts scaled 1 min → 3 s, 30 min → 90 s)."""
    return module_stacks(services=("api", "scheduler", "extractor", "loader"), **FAULT_SETTINGS,
                         DM_TIMEOUT_SCALE="0.05")


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def retried_to_completion(stack, job_id: int, first: int, *, first_status: str = "failed",
                          kind: str = "worker_lost") -> list[dict]:
    runs = wait_for(lambda: (c := chain(stack, job_id)) and c[-1]["status"] == "completed" and c,
                    timeout_s=120, what="a completed retry", stack=stack)
    assert runs[0]["id"] == first and runs[0]["status"] == first_status, runs[0]
    assert runs[0]["error"]["kind"] == kind, runs[0]["error"]
    assert runs[1]["trigger"] == "retry" and runs[1]["retry_of"] == first and runs[1]["attempt"] == 2
    assert runs[-1]["rows_read"] == SOURCE_ROWS
    return runs


@pytest.mark.parametrize("victim, progress, mode", [
    ("loader", "rows_inserted", "truncate_load"),
    ("loader", "rows_inserted", "sync_delete"),
    ("extractor", "rows_read", "truncate_load"),
])
def test_a_killed_worker_leaves_the_destination_unchanged_until_the_retry_commits(
        dbs, tmp_path, queue_prefix, victim: str, progress: str, mode: str) -> None:
    metadata, src, dst = dbs
    make_destination(dst, throttle_s=0.05)
    stack = distributed(tmp_path, metadata, queue_prefix)
    try:
        job_id = create_job(stack, src, dst, mode=mode)
        first = execute(stack, job_id)
        # Given a worker in the middle of the run (the extractor blocked on the full batch queue)
        wait_for(lambda: execution(stack, first)[progress] > 0, what=progress, stack=stack)
        assert snapshot(dst) == OLD
        # When it is killed
        kill9(stack.procs[victim])
        wait_for(lambda: execution(stack, first)["status"] == "failed", what="worker lost", stack=stack)
        # Then nothing of the killed attempt is visible nor counted, and a new worker completes the retry
        assert snapshot(dst) == OLD
        killed = execution(stack, first)
        assert (killed["rows_written"], killed["rows_deleted"]) == (0, 0) and killed["rows_read"] > 0, killed
        stack.start(f"{victim}2", victim)
        retried_to_completion(stack, job_id, first)
        assert snapshot(dst) == NEW
    finally:
        stack.stop()


def test_rabbitmq_restart_mid_run_recovers_without_restarting_services(dbs, tmp_path, queue_prefix) -> None:
    metadata, src, dst = dbs
    make_destination(dst, throttle_s=0.05)
    stack = distributed(tmp_path, metadata, queue_prefix)
    try:
        job_id = create_job(stack, src, dst, mode="truncate_load")
        first = execute(stack, job_id)
        wait_for(lambda: execution(stack, first)["rows_inserted"] > 0, what="rows written", stack=stack)
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
        try:
            time.sleep(2)
            assert snapshot(dst) == OLD
        finally:
            subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
            subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=120)
        runs = wait_for(lambda: (c := chain(stack, job_id)) and c[-1]["status"] == "completed" and c,
                        timeout_s=180, what="a completed retry", stack=stack)
        assert runs[0]["status"] == "failed" and runs[0]["error"]["kind"] in ("transport", "worker_lost")
        assert len(runs) >= 2 and snapshot(dst) == NEW
        assert all(p.poll() is None for p in stack.procs.values()), "a service died"
        # and later executions run normally
        later = execute(stack, job_id)
        wait_for(lambda: execution(stack, later)["status"] == "completed", what="a later run", stack=stack)
    finally:
        stack.stop()


def test_timeout_stops_the_step_marks_timed_out_and_retries(source, pg_database, shared_stack) -> None:
    src, dst, stack = source, pg_database(), shared_stack
    make_destination(dst)
    # a 1-minute timeout, scaled to 3 seconds (DM_TIMEOUT_SCALE of the shared stack)
    job_id = create_job(stack, src, dst, mode="truncate_load", timeout_minutes=1, max_retries=1,
                        sql="SELECT id, name, price FROM items, pg_sleep(60) AS nap")
    first = execute(stack, job_id)
    runs = wait_for(lambda: len(c := chain(stack, job_id)) == 2 and c[1]["status"] == "timed_out" and c,
                    timeout_s=60, what="two timed-out attempts", stack=stack)
    assert [r["status"] for r in runs] == ["timed_out", "timed_out"] and runs[0]["id"] == first
    assert runs[0]["duration_seconds"] < 30 and "time" in runs[0]["error"]["message"].lower()
    assert snapshot(dst) == OLD


def test_cancel_stops_within_seconds_rolls_back_and_is_not_retried(source, pg_database, shared_stack) -> None:
    src, dst, stack = source, pg_database(), shared_stack
    make_destination(dst, throttle_s=0.05)
    job_id = create_job(stack, src, dst, mode="truncate_load")
    first = execute(stack, job_id)
    wait_for(lambda: execution(stack, first)["rows_inserted"] > 0, what="rows written", stack=stack)
    with stack.api as api:
        assert api.post(f"/api/executions/{first}/cancel").status_code == 202
    asked = time.monotonic()
    wait_for(lambda: execution(stack, first)["status"] == "cancelled", timeout_s=15, what="cancelled",
             stack=stack)
    assert time.monotonic() - asked < 10
    time.sleep(1.5)
    assert snapshot(dst) == OLD and len(chain(stack, job_id)) == 1
    # history keeps the rows read and says nothing was written (staged rows were rolled back)
    done = execution(stack, first)
    assert done["rows_read"] > 0 and done["rows_staged"] > 0, done
    assert (done["rows_written"], done["rows_inserted"], done["rows_deleted"]) == (0, 0, 0), done


def test_source_refusing_connections_fails_clearly_and_the_retry_completes(source, pg_database,
                                                                          shared_stack) -> None:
    src, dst, stack = source, pg_database(), shared_stack
    make_destination(dst)
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxied = src.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert proxied != src
    try:
        job_id = create_job(stack, proxied, dst, mode="truncate_load", max_retries=5)
        first = execute(stack, job_id)
        wait_for(lambda: execution(stack, first)["status"] == "failed", what="a refused connection", stack=stack)
        proxy.start()
        runs = wait_for(lambda: (c := chain(stack, job_id)) and c[-1]["status"] == "completed" and c,
                        timeout_s=60, what="a completed retry", stack=stack)
        assert "refused" in runs[0]["error"]["message"].lower() or "unreachable" in runs[0]["error"]["message"]
        assert snapshot(dst) == NEW
    finally:
        proxy.stop()


def test_malformed_messages_are_dead_lettered_and_workers_keep_running(source, pg_database, shared_stack) -> None:
    src, dst, stack = source, pg_database(), shared_stack
    make_destination(dst)
    topology = Topology(stack.env["DM_QUEUE_PREFIX"])
    transport = create_transport(AMQP_URL, name="test", dead_letter_queue=topology.dead)
    try:
        while transport.get(topology.dead, timeout_s=0.2) is not None:  # the shared stack's earlier dead letters
            pass
        transport.publish(b"\xc1 not msgpack", queue=topology.runs)
        transport.publish(run_request(1).encode()[:-3], queue=topology.loads)
        transport.publish(b"{}", exchange=topology.events, routing_key="progress.1")
        dead = []
        wait_for(lambda: (m := transport.get(topology.dead, timeout_s=0.5)) and dead.append(m) or len(dead) == 3,
                 timeout_s=30, what="three dead letters", stack=stack)
        reasons = " | ".join(str(m.headers.get("x-dm-reason")) for m in dead)
        assert "DecodeError" in reasons or "undecodable" in reasons, reasons
        job_id = create_job(stack, src, dst, mode="truncate_load")
        later = execute(stack, job_id)
        wait_for(lambda: execution(stack, later)["status"] == "completed", what="a normal run", stack=stack)
        assert snapshot(dst) == NEW and all(p.poll() is None for p in stack.procs.values())
    finally:
        transport.close()


def test_errors_that_cannot_heal_are_not_retried(source, pg_database, shared_stack) -> None:
    src, dst, stack = source, pg_database(), shared_stack
    make_destination(dst)
    cases = {"SELECT id, name, price FROM items WHERE": "syntax",
             "SELECT id, name, price FROM no_such_table": "no_such_table",
             "SELECT id, name, price, 1 AS surplus FROM items": "surplus"}
    for sql, words in cases.items():
        job_id = create_job(stack, src, dst, mode="upsert", sql=sql, max_retries=3)
        first = execute(stack, job_id)
        done = wait_for(lambda: (e := execution(stack, first))["status"] == "failed" and e, what="failure",
                        stack=stack)
        assert words in done["error"]["message"], done["error"]
        time.sleep(1.5)  # longer than the retry backoff of the test stack
        assert len(chain(stack, job_id)) == 1, f"{sql!r} was retried"
    assert snapshot(dst) == OLD
