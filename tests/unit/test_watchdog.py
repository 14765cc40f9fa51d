"""The destination's state table and the watchdog's decisions (SQLite, in-memory transport)."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from services.scheduler.liveness import Liveness
from services.scheduler.watchdog import Watchdog
from shared import messages
from shared.load.state import ABANDONED, COMMITTED, ExecutionFenced, Settled, claim, ensure_state_table, \
    execution_key, mark_committed, settle
from shared.messages import Event
from shared.store.executions import create_execution
from shared.store.models import ExecutionRow, JobRow
from tests.unit.test_scheduler import T0, add_job, bus, sessions  # noqa: F401 - fixtures

COUNTS = {"rows_read": 7, "rows_inserted": 5, "rows_updated": 1, "rows_skipped": 1, "rows_deleted": 2,
          "rows_failed": 0}


@pytest.fixture
def destination(tmp_path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dst.db'}", poolclass=sa.pool.NullPool)
    ensure_state_table(engine)
    yield engine
    engine.dispose()


def test_a_committed_load_is_found_with_its_counts(destination) -> None:
    with destination.begin() as conn:
        claim(conn, execution_id=1, job_id=9)
        mark_committed(conn, execution_id=1, counts=COUNTS)
    assert settle(destination, execution_id=1, job_id=9) == Settled(COMMITTED, COUNTS)


def test_a_load_that_never_committed_is_abandoned_and_can_never_commit(destination) -> None:
    with pytest.raises(RuntimeError), destination.begin() as conn:
        claim(conn, execution_id=2, job_id=9)
        raise RuntimeError("killed before COMMIT")
    assert settle(destination, execution_id=2, job_id=9).outcome == ABANDONED
    with pytest.raises(ExecutionFenced), destination.begin() as conn:  # a zombie loader
        claim(conn, execution_id=2, job_id=9)
    assert settle(destination, execution_id=2, job_id=9).outcome == ABANDONED


def test_an_execution_id_reused_by_another_metadata_store_is_a_new_execution(destination) -> None:
    # Given execution 1 of one metadata store committed into this destination
    from datetime import datetime, timezone

    first = execution_key(1, datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc))
    with destination.begin() as conn:
        claim(conn, execution_id=1, job_id=9, key=first)
        mark_committed(conn, execution_id=1, counts=COUNTS, key=first)
    # When a reset (or another) store queues its own execution 1 later, it is not fenced
    second = execution_key(1, datetime(2026, 12, 1, 11, 0, 0, 5, tzinfo=timezone.utc))
    assert second != first
    assert settle(destination, execution_id=1, job_id=9, key=second).outcome == ABANDONED
    with destination.begin() as conn:
        claim(conn, execution_id=1, job_id=4, key=execution_key(1, datetime(2026, 12, 1, 12, tzinfo=timezone.utc)))
    # and the first one's record is untouched
    assert settle(destination, execution_id=1, job_id=9, key=first) == Settled(COMMITTED, COUNTS)


def test_an_open_load_transaction_is_in_flight(destination) -> None:
    with destination.connect() as conn:
        trans = conn.begin()
        claim(conn, execution_id=3, job_id=9)
        assert settle(destination, execution_id=3, job_id=9, lock_timeout_s=0.2).outcome == "in_flight"
        mark_committed(conn, execution_id=3, counts=COUNTS)
        trans.commit()
    assert settle(destination, execution_id=3, job_id=9).outcome == COMMITTED


def _running(sessions, *, loader_at, dispatched_at=T0) -> int:  # noqa: F811
    job_id = add_job(sessions, schedule="")
    with sessions() as s:
        row = create_execution(s, s.get(JobRow, job_id), trigger="manual", status="running")
        row.dispatched_at = row.published_at = dispatched_at
        row.heartbeat_at = row.loader_heartbeat_at = loader_at
        row.extractor_done = True
        row.deadline_at = T0 + timedelta(hours=1)
        s.commit()
        return row.id


def _spy(transport, topology) -> None:
    transport.declare_queue("spy")
    transport.bind("spy", topology.events, "finished.*")
    transport.declare_queue("spy-control")
    transport.bind("spy-control", topology.control, "#")


@pytest.mark.parametrize("settled, finished, decided", [
    (Settled(COMMITTED, COUNTS), "completed", 1),
    (Settled(ABANDONED), "failed", 1),
    (Settled("in_flight"), None, 0),
])
def test_a_lost_loader_is_decided_by_what_the_destination_holds(sessions, bus, settled, finished,  # noqa: F811
                                                                  decided) -> None:
    transport, topology = bus
    _spy(transport, topology)
    eid = _running(sessions, loader_at=T0)
    watchdog = Watchdog(transport, topology, worker_lost_s=10, settle=lambda s, row: settled)
    with sessions() as s:
        assert watchdog.run(s, now=T0 + timedelta(seconds=30)) == decided
    event = transport.get("spy", timeout_s=0.2)
    if finished is None:  # still committing: stopped, decided on a later pass
        assert event is None and transport.get("spy-control", timeout_s=0.2) is not None
        return
    event = messages.decode(event.body)
    assert (event.execution_id, event.status) == (eid, finished)
    if finished == "completed":
        assert event.counts == COUNTS and not event.error
    else:
        assert event.error["kind"] == "worker_lost"


def test_heartbeats_seen_on_the_broker_keep_an_execution_alive_while_history_is_stale(sessions, bus) -> None:  # noqa: F811
    transport, topology = bus
    _spy(transport, topology)
    eid = _running(sessions, loader_at=T0)
    liveness = Liveness(transport, topology)
    liveness.start()
    try:
        now = T0 + timedelta(seconds=30)
        liveness._since = T0  # listening long enough
        beat = Event(execution_id=eid, kind="heartbeat", service="loader", ts=(now - timedelta(seconds=1)).timestamp())
        transport.publish(beat.encode(), exchange=topology.events, routing_key=f"heartbeat.{eid}")
        deadline = time.monotonic() + 5
        while liveness.beat(eid, "loader") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with sessions() as s:
            assert Watchdog(transport, topology, worker_lost_s=10, liveness=liveness).run(s, now=now) == 0
        with sessions() as s:  # without it, the stored heartbeat says lost
            assert Watchdog(transport, topology, worker_lost_s=10).run(s, now=now) == 1
    finally:
        liveness.stop()


def test_a_dispatch_never_published_goes_back_to_the_queue(sessions, bus) -> None:  # noqa: F811
    transport, topology = bus
    job_id = add_job(sessions, schedule="")
    with sessions() as s:
        row = create_execution(s, s.get(JobRow, job_id), trigger="manual")
        row.dispatched_at, row.deadline_at = T0, T0 + timedelta(minutes=30)
        s.commit()
        eid = row.id
    with sessions() as s:
        assert Watchdog(transport, topology, worker_lost_s=10).run(s, now=T0 + timedelta(seconds=5)) == 0
        assert Watchdog(transport, topology, worker_lost_s=10).run(s, now=T0 + timedelta(seconds=30)) == 1
    with sessions() as s:
        row = s.get(ExecutionRow, eid)
        assert (row.status, row.dispatched_at, row.published_at) == ("queued", None, None)
