"""A worker refuses a message it does not understand (another wire version, an unknown type, a
snapshot with a field it does not know) by dead-lettering it with the reason, on every transport."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from services.extractor.worker import Extractor
from services.loader.worker import Loader
from shared import codec
from shared.jobspec import JobSpec
from shared.messages import VERSION, RunRequest
from shared.secrets import SecretBox
from shared.snapshots import ProjectSnapshot
from shared.topology import Topology
from tests.contract.harness import Harness


@pytest.fixture
def topology(harness: Harness) -> Iterator[Topology]:
    """The service topology under the harness prefix, its names registered for cleanup."""
    topology = Topology(harness.prefix)
    for name in ("runs", "loads", "events.recorder"):
        harness.q(name)
    harness.exchanges.update({topology.events, topology.control})
    topology.declare(harness.transport)
    yield topology


def _run_request_of_the_next_release() -> bytes:
    job = JobSpec(name="j", steps=[{"name": "s", "project_id": 1, "sql": "SELECT 1"}],
                  destination={"project_id": 1, "table": "t"})
    body = codec.decode(RunRequest(execution_id=3, job_id=1, job=job, projects={1: ProjectSnapshot(id=1, name="p")})
                        .encode())
    body["job"]["a_field_of_the_next_release"] = {"on": True}
    return codec.encode(body)


def test_workers_dead_letter_what_they_do_not_understand_with_the_reason(harness: Harness,
                                                                          topology: Topology) -> None:
    box = SecretBox(Fernet.generate_key().decode())
    workers = [Extractor(harness.transport, topology, box, batch_rows=10, batch_queue_max=2, heartbeat_s=5.0),
               Loader(harness.transport, topology, box, heartbeat_s=5.0)]
    for worker in workers:
        worker.start()
    try:
        # Given: a run request and a load request of the previous wire version, a message type
        # no worker knows, and a run request whose job carries a field this release does not know
        old = {"v": VERSION - 1, "id": "x", "run": 1, "job": {}, "projects": {}}
        harness.transport.publish(codec.encode({"t": "run", **old}), queue=topology.runs)
        harness.transport.publish(codec.encode({"t": "load", **old}), queue=topology.loads)
        harness.transport.publish(codec.encode({"t": "partition", "v": VERSION, "execution_id": 2}),
                                  queue=topology.runs)
        harness.transport.publish(_run_request_of_the_next_release(), queue=topology.runs)
        # Then: all four are dead-lettered, each with the reason
        reasons = sorted(reason for _, reason in harness.dead_letters(4))
    finally:
        for worker in workers:
            worker.stop(timeout_s=10)
    assert reasons == sorted([
        f"DecodeError: unsupported message version {VERSION - 1} of a 'run' message (this release reads version "
        f"{VERSION})",
        f"DecodeError: unsupported message version {VERSION - 1} of a 'load' message (this release reads version "
        f"{VERSION})",
        "DecodeError: unknown message type 'partition'",
        "DecodeError: malformed 'run' message: job.a_field_of_the_next_release: Extra inputs are not permitted",
    ]), reasons
