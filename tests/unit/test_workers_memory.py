"""Both workers in one process on the in-memory transport, SQLite source and destination: a run
request in, batches, the load, the final events, the rows in the destination; a cancel; and
messages a worker does not understand dead-lettered with the reason (no network)."""
from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from services.extractor.worker import Extractor
from services.loader.worker import Loader
from shared import codec, messages
from shared.jobspec import JobSpec
from shared.messages import VERSION, Cancel, Event, RunRequest
from shared.secrets import SecretBox
from shared.snapshots import ProjectSnapshot
from shared.topology import Topology
from shared.transport.memory import MemoryTransport

WAIT_S = 60.0
SPY = "spy"
ROWS = [(i, f"name {i}") for i in range(1, 8)]
ENDLESS_SQL = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
               "SELECT x AS id, 'n' AS name FROM c")


class Stack:
    """An extractor and a loader sharing one MemoryTransport, and a spy queue on the events."""

    def __init__(self, tmp_path: Path) -> None:
        self.transport, self.topology = MemoryTransport(), Topology(f"u{uuid.uuid4().hex[:8]}")
        self.topology.declare(self.transport)
        self.transport.declare_queue(SPY)
        self.transport.bind(SPY, self.topology.events, "#")
        box = SecretBox(Fernet.generate_key().decode())
        self.source, self.destination = tmp_path / "source.db", tmp_path / "destination.db"
        with sqlite3.connect(self.source) as db:
            db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
            db.executemany("INSERT INTO people VALUES (?, ?)", ROWS)
        with sqlite3.connect(self.destination) as db:
            db.execute("CREATE TABLE copy (id INTEGER PRIMARY KEY, name TEXT)")
            db.execute("INSERT INTO copy VALUES (100, 'there before')")
        self.extractor = Extractor(self.transport, self.topology, box, batch_rows=3, batch_queue_max=2,
                                   heartbeat_s=5.0)
        self.loader = Loader(self.transport, self.topology, box, heartbeat_s=5.0)
        self.events: list[Event] = []

    def run_request(self, execution_id: int, *, sql: str = "SELECT id, name FROM people ORDER BY id",
                    mode: str = "insert_only", validate: bool = True) -> RunRequest:
        job = JobSpec(name="copy people", steps=[{"name": "people", "project_id": 1, "sql": sql}],
                      destination={"project_id": 2, "table": "copy", "mode": mode, "key_columns": ["id"]},
                      validate_before_execution=validate)
        projects = {1: ProjectSnapshot(id=1, name="source", engine="sqlite", database=str(self.source)),
                    2: ProjectSnapshot(id=2, name="destination", engine="sqlite", database=str(self.destination))}
        return RunRequest(execution_id=execution_id, job_id=1, job=job, projects=projects,
                          deadline=time.time() + WAIT_S, batch_rows=3, execution_key=f"key-{execution_id}")

    def wait_for_event(self, execution_id: int, kind: str, service: str = "") -> Event:
        """The first event of that kind (and service) for the execution; fails after WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = [e for e in self.events if (e.execution_id, e.kind) == (execution_id, kind)
                     and service in ("", e.service)]
            if found:
                return found[0]
            message = self.transport.get(SPY, timeout_s=0.2)
            if message is not None:
                self.events.append(messages.decode(message.body, expect=Event))
        pytest.fail(f"no {kind!r} event of execution {execution_id} within {WAIT_S}s: {self.events}")

    def destination_rows(self) -> list[tuple]:
        with sqlite3.connect(self.destination) as db:
            return db.execute("SELECT id, name FROM copy ORDER BY id").fetchall()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    item = Stack(tmp_path)
    item.extractor.start()
    item.loader.start()
    yield item
    item.extractor.stop(timeout_s=10)
    item.loader.stop(timeout_s=10)
    item.transport.close()


def test_a_run_request_is_extracted_loaded_and_reported_with_its_counts(stack: Stack) -> None:
    # Given: 7 source rows, batches of 3, a destination holding one row of its own
    # When: the run request arrives
    stack.transport.publish(stack.run_request(41).encode(), queue=stack.topology.runs)
    # Then: the extractor announces it and hands over 7 rows; the loader commits them and reports
    finished = stack.wait_for_event(41, "finished")
    assert finished.service == "loader" and finished.status == "completed", finished
    assert finished.counts["rows_read"] == 7 and finished.counts["rows_inserted"] == 7, finished.counts
    assert stack.wait_for_event(41, "started").service == "extractor"
    assert stack.wait_for_event(41, "extracted").counts == {"rows_read": 7}
    assert stack.destination_rows() == [*ROWS, (100, "there before")]


def test_an_upsert_updates_in_place_through_the_same_envelope(stack: Stack) -> None:
    stack.transport.publish(stack.run_request(42).encode(), queue=stack.topology.runs)
    assert stack.wait_for_event(42, "finished").status == "completed"
    stack.transport.publish(stack.run_request(43, mode="upsert", sql="SELECT id, 'renamed' AS name FROM people "
                                              "WHERE id <= 2").encode(), queue=stack.topology.runs)
    finished = stack.wait_for_event(43, "finished")
    assert (finished.status, finished.counts["rows_updated"], finished.counts["rows_inserted"]) == ("completed", 2, 0)
    assert stack.destination_rows()[:3] == [(1, "renamed"), (2, "renamed"), ROWS[2]]


def test_a_cancel_during_the_load_rolls_back_and_reports_cancelled(stack: Stack) -> None:
    # Given: a source query that never ends on its own (the only way out is the cancel)
    stack.transport.publish(stack.run_request(44, sql=ENDLESS_SQL, validate=False).encode(),
                            queue=stack.topology.runs)
    staged = stack.wait_for_event(44, "progress", service="loader")
    assert staged.counts["rows_staged"] > 0
    # When: a user cancels it while rows are staged in the destination's transaction
    stack.transport.publish(Cancel(execution_id=44, reason="cancelled by a user").encode(),
                            exchange=stack.topology.control, routing_key="cancel.44")
    # Then: the loader rolls back and reports cancelled; the destination is as it was
    finished = stack.wait_for_event(44, "finished")
    assert (finished.service, finished.status) == ("loader", "cancelled"), finished
    assert finished.counts["rows_inserted"] == 0
    assert stack.destination_rows() == [(100, "there before")]


def test_a_cancel_that_arrives_before_the_request_stops_the_execution_at_once(stack: Stack) -> None:
    stack.transport.publish(Cancel(execution_id=45, reason="cancelled by a user").encode(),
                            exchange=stack.topology.control, routing_key="cancel.45")
    stack.transport.join(timeout_s=WAIT_S)  # both control listeners hold the pending cancel
    stack.transport.publish(stack.run_request(45).encode(), queue=stack.topology.runs)
    finished = stack.wait_for_event(45, "finished")
    assert (finished.service, finished.status) == ("extractor", "cancelled"), finished
    assert stack.destination_rows() == [(100, "there before")]


def _old_version(kind: str) -> bytes:
    return codec.encode({"t": kind, "v": VERSION - 1, "id": "x", "run": 46, "job": {}, "projects": {}})


def test_messages_a_worker_does_not_understand_are_dead_lettered_and_the_workers_go_on(stack: Stack) -> None:
    # Given: garbage, a message of the previous wire version, an unknown type, the wrong type,
    # and a run request whose job snapshot has a field this release does not know
    request = stack.run_request(47)
    body = codec.decode(request.encode())
    body["job"]["a_field_of_the_next_release"] = True
    sent = [(b"\xc1 not msgpack", stack.topology.runs), (_old_version("run"), stack.topology.runs),
            (_old_version("load"), stack.topology.loads),
            (codec.encode({"t": "partition", "v": VERSION, "execution_id": 46}), stack.topology.runs),
            (Cancel(execution_id=46).encode(), stack.topology.loads), (codec.encode(body), stack.topology.runs)]
    for raw, queue in sent:
        stack.transport.publish(raw, queue=queue)
    # Then: each is dead-lettered with a reason that says why
    deadline = time.monotonic() + WAIT_S
    while len(stack.transport.dead_letters) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    reasons = sorted(reason for _, reason in stack.transport.dead_letters)
    assert len(reasons) == len(sent), reasons
    assert all(r.startswith("DecodeError: ") for r in reasons), reasons
    assert any("undecodable message" in r for r in reasons), reasons
    assert any(f"unsupported message version {VERSION - 1} of a 'run' message" in r for r in reasons), reasons
    assert any(f"unsupported message version {VERSION - 1} of a 'load' message" in r for r in reasons), reasons
    assert any("unknown message type 'partition'" in r for r in reasons), reasons
    assert any("expected a 'load' message, got 'cancel'" in r for r in reasons), reasons
    assert any("job.a_field_of_the_next_release" in r for r in reasons), reasons
    # And: the workers still run executions
    stack.transport.publish(stack.run_request(48).encode(), queue=stack.topology.runs)
    assert stack.wait_for_event(48, "finished").status == "completed"
    assert stack.destination_rows() == [*ROWS, (100, "there before")]


def test_messages_round_trip_with_typed_snapshots() -> None:
    job = JobSpec(name="j", steps=[{"name": "s", "project_id": 1, "sql": "SELECT 1"}],
                  destination={"project_id": 1, "table": "t"})
    sent = RunRequest(execution_id=9, job_id=3, job=job, projects={1: ProjectSnapshot(id=1, name="p")},
                      execution_key="k")
    got = messages.decode(sent.encode(), expect=RunRequest)
    assert got == sent and isinstance(got.job, JobSpec) and isinstance(got.projects[1], ProjectSnapshot)
    with pytest.raises(AttributeError):
        got.execution_id = 10  # type: ignore[misc]
