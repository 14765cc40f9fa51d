"""History tells the truth after any kill (issue 13, items 11-14), on real processes.

The loader, scheduler and API are killed at the moments that used to lie: during the
destination's COMMIT, right after it, after taking a load request, right after a
dispatch commit, and for longer than DM_WORKER_LOST_S. Each test checks what a user
would: the destination's rows, and history's status, counts and retries.
"""
from __future__ import annotations

import time

import pytest

from tests.conftest import AMQP_URL, MYSQL_URL, PG_URL, require_service
from tests.e2e.faults import OLD_ROWS, create_job, execute, make_destination, make_source
from tests.e2e.kills import (WORKER_LOST_S, api_get, committing, hold_commit, holding, job_chain, keyless_table,
                             kill9, kill_stack, settled_chain, wait)

pytestmark = pytest.mark.e2e
ROWS = 20_000
SUM = ROWS * (ROWS + 1) // 2


@pytest.fixture
def services() -> None:
    require_service("PostgreSQL", PG_URL)
    require_service("RabbitMQ", AMQP_URL)


@pytest.fixture(scope="module")
def source(module_databases) -> str:
    """The ROWS-row source every test reads (none writes to it): made once per module."""
    src = module_databases.pg()
    make_source(src, rows=ROWS)
    return src


def test_a_loader_killed_during_commit_is_recorded_completed_and_not_written_twice(
        services, source, pg_database, tmp_path, queue_prefix) -> None:
    # Given a keyless insert_only job whose destination holds COMMIT for 3 s (deferred trigger)
    metadata, src, dst = pg_database(), source, pg_database()
    keyless_table(dst)
    hold_commit(dst, 3)
    stack = kill_stack(tmp_path, metadata, queue_prefix)
    try:
        job_id = create_job(stack, src, dst, mode="insert_only")
        first = execute(stack, job_id)
        # When the loader is killed -9 while pg_stat_activity shows its COMMIT
        wait(lambda: committing(dst), timeout_s=60, every_s=0.05, what="COMMIT in progress", stack=stack)
        kill9(stack.procs["loader"])
        stack.start("loader2", "loader")
        # Then the execution is recorded completed with the committed counts, and never retried
        runs = wait(lambda: settled_chain(stack, job_id), timeout_s=60, what="a settled execution", stack=stack)
        time.sleep(3)  # longer than the retry backoff of the test stack
        runs = job_chain(stack, job_id)
        assert [(r["id"], r["status"]) for r in runs] == [(first, "completed")], runs
        assert (runs[0]["rows_read"], runs[0]["rows_inserted"], runs[0]["rows_failed"]) == (ROWS, ROWS, 0)
        assert holding(dst) == (ROWS, ROWS, SUM)
    finally:
        stack.stop()


def test_a_mariadb_loader_killed_right_after_commit_is_recorded_completed(
        services, source, pg_database, mysql_database, tmp_path, queue_prefix) -> None:
    # MariaDB has no deferred triggers and its ways to hold COMMIT (FLUSH TABLES WITH READ LOCK,
    # BACKUP STAGE BLOCK_COMMIT) stop the whole server; so the loader exits (like kill -9)
    # between its COMMIT and the event after it, through the test-only DM_TEST_FAULT hook.
    require_service("MariaDB", MYSQL_URL)
    metadata, src, dst = pg_database(), source, mysql_database()
    keyless_table(dst)
    stack = kill_stack(tmp_path, metadata, queue_prefix, faults={"loader": "loader_after_commit"})
    try:
        job_id = create_job(stack, src, dst, mode="insert_only")
        first = execute(stack, job_id)
        wait(lambda: stack.procs["loader"].poll() is not None, timeout_s=60, what="the loader's exit", stack=stack)
        assert stack.procs["loader"].returncode == 137
        stack.start("loader2", "loader")
        runs = wait(lambda: settled_chain(stack, job_id), timeout_s=60, what="a settled execution", stack=stack)
        time.sleep(3)
        runs = job_chain(stack, job_id)
        assert [(r["id"], r["status"]) for r in runs] == [(first, "completed")], runs
        assert (runs[0]["rows_read"], runs[0]["rows_inserted"]) == (ROWS, ROWS)
        assert holding(dst) == (ROWS, ROWS, SUM)
    finally:
        stack.stop()


def test_an_api_outage_longer_than_worker_lost_fails_nothing(services, source, pg_database, tmp_path,
                                                              queue_prefix) -> None:
    # Given a run of several seconds (general path, small batches, every statement slowed)
    metadata, src, dst = pg_database(), source, pg_database()
    make_destination(dst, throttle_s=0.2)  # >= 40 batches x 0.2 s
    stack = kill_stack(tmp_path, metadata, queue_prefix, DM_BULK_TEXT="false", DM_BATCH_ROWS="500")
    try:
        job_id = create_job(stack, src, dst, mode="truncate_load")
        first = execute(stack, job_id)
        wait(lambda: (api_get(stack, f"/api/executions/{first}") or {}).get("rows_staged", 0) > 0,
             timeout_s=60, what="rows staged", stack=stack)
        # When the API (the history writer) is down for 3 x DM_WORKER_LOST_S
        kill9(stack.procs.pop("api"))
        time.sleep(3 * float(WORKER_LOST_S))
        assert stack.procs["extractor"].poll() is None and stack.procs["loader"].poll() is None
        assert holding(dst)[0] == OLD_ROWS, "the run ended before the outage was long enough"
        stack.start("api2", "api")
        stack.wait_healthy()
        # Then the execution completes once, without a retry
        runs = wait(lambda: settled_chain(stack, job_id), timeout_s=90, what="the run's end", stack=stack)
        assert [(r["id"], r["status"], r["attempt"]) for r in runs] == [(first, "completed", 1)], runs
        assert (runs[0]["rows_read"], runs[0]["rows_inserted"]) == (ROWS, ROWS)
        assert holding(dst) == (ROWS, ROWS, SUM)
    finally:
        stack.stop()


@pytest.mark.parametrize("bulk_text", ["true", "false"])
def test_a_loader_killed_before_its_first_heartbeat_is_detected_and_retried(
        services, source, pg_database, tmp_path, queue_prefix, bulk_text: str) -> None:
    # Given a loader that dies right after taking its load request (before any heartbeat)
    metadata, src, dst = pg_database(), source, pg_database()
    keyless_table(dst)
    stack = kill_stack(tmp_path, metadata, queue_prefix, faults={"loader": "loader_after_request"},
                       DM_BULK_TEXT=bulk_text)
    try:
        job_id = create_job(stack, src, dst, mode="insert_only")
        first = execute(stack, job_id)
        wait(lambda: stack.procs["loader"].poll() is not None, timeout_s=60, what="the loader's exit", stack=stack)
        stack.start("loader2", "loader")
        # Then within DM_WORKER_LOST_S (not the 30-minute timeout) it fails as worker lost and is retried once
        runs = wait(lambda: settled_chain(stack, job_id), timeout_s=60, what="a completed retry", stack=stack)
        assert [(r["status"], r["attempt"]) for r in runs] == [("failed", 1), ("completed", 2)], runs
        assert runs[0]["id"] == first and runs[0]["error"]["kind"] == "worker_lost"
        assert runs[0]["rows_written"] == 0 and runs[1]["rows_inserted"] == ROWS
        assert holding(dst) == (ROWS, ROWS, SUM)
    finally:
        stack.stop()


def test_executions_dispatched_by_a_scheduler_killed_before_publishing_run_once(
        services, source, pg_database, tmp_path, queue_prefix) -> None:
    # Given a scheduler that dies right after committing its dispatch, before publishing
    metadata, src, dst = pg_database(), source, pg_database()
    keyless_table(dst)
    stack = kill_stack(tmp_path, metadata, queue_prefix, faults={"scheduler": "scheduler_after_dispatch"})
    try:
        jobs = [create_job(stack, src, dst, mode="insert_only") for _ in range(3)]  # three jobs, one table
        firsts = [execute(stack, job_id) for job_id in jobs]
        wait(lambda: stack.procs["scheduler"].poll() is not None, timeout_s=30, what="the scheduler's exit",
             stack=stack)
        assert stack.procs["scheduler"].returncode == 137
        # When a scheduler comes back
        stack.start("scheduler2", "scheduler")
        # Then each execution runs once, as its first attempt (published again, not timed out)
        for job_id, first in zip(jobs, firsts):
            runs = wait(lambda: settled_chain(stack, job_id), timeout_s=60, what="a completed run", stack=stack)
            assert [(r["id"], r["status"], r["attempt"]) for r in runs] == [(first, "completed", 1)], runs
        assert holding(dst) == (3 * ROWS, ROWS, 3 * SUM)
    finally:
        stack.stop()
