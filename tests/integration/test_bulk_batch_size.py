"""How many batches a narrow table moves in: bulk batches hold up to DM_BULK_BATCH_ROWS rows
(cut earlier at ~4 MiB), batches of values DM_BATCH_ROWS, at the defaults.

Given 250,000 rows of two integers (15-22 bytes a row, so the row cap comes long before 4 MiB),
when the extractor and the loader (one process, in-memory transport, defaults) move them into
PostgreSQL or MariaDB, then they travel in 100,000-row batches on the fast path and in
10,000-row batches on the general path, and the destination holds exactly the source's rows.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from services.extractor.worker import Extractor
from services.loader.worker import Loader
from shared import messages
from shared.jobspec import JobSpec
from shared.messages import Batch, Event, RunRequest
from shared.secrets import SecretBox
from shared.settings import DEFAULT_BATCH_QUEUE_MAX, DEFAULT_BATCH_ROWS, DEFAULT_BULK_BATCH_ROWS
from shared.snapshots import ProjectSnapshot
from shared.topology import Topology
from shared.transport.memory import MemoryTransport

pytestmark = pytest.mark.integration

ROWS = 250_000
WAIT_S = 240.0
SPY = "spy"


class CountingTransport(MemoryTransport):
    """The in-memory transport, noting the row count of every batch published."""

    def __init__(self, topology: Topology) -> None:
        super().__init__()
        self.batch_queues = f"{topology.prefix}.batches."
        self.batches: list[tuple[str | None, int]] = []  # (bulk format or None, rows)

    def publish(self, body: bytes, **kwargs) -> None:  # type: ignore[no-untyped-def, override]
        if kwargs.get("queue", "").startswith(self.batch_queues):
            found = messages.decode(body)
            if isinstance(found, Batch):
                self.batches.append((found.fmt.split(":")[0] if found.fmt else None, found.size))
        super().publish(body, **kwargs)


@pytest.fixture
def workers(request: pytest.FixtureRequest) -> Iterator[tuple[CountingTransport, Topology, SecretBox]]:
    """An extractor (defaults, except the bulk path as the test asks) and a loader on one transport."""
    topology = Topology(f"u{uuid.uuid4().hex[:8]}")
    transport = CountingTransport(topology)
    topology.declare(transport)
    transport.declare_queue(SPY)
    transport.bind(SPY, topology.events, "#")
    box = SecretBox(Fernet.generate_key().decode())
    extractor = Extractor(transport, topology, box, batch_rows=DEFAULT_BATCH_ROWS,
                          batch_queue_max=DEFAULT_BATCH_QUEUE_MAX, heartbeat_s=5.0, bulk_text=request.param)
    loader = Loader(transport, topology, box, heartbeat_s=5.0)
    extractor.start()
    loader.start()
    yield transport, topology, box
    extractor.stop(timeout_s=10)
    loader.stop(timeout_s=10)
    transport.close()


def _finished(transport: MemoryTransport, execution_id: int) -> Event:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        message = transport.get(SPY, timeout_s=0.5)
        if message is not None:
            event = messages.decode(message.body, expect=Event)
            if (event.execution_id, event.kind) == (execution_id, "finished"):
                return event
    pytest.fail(f"execution {execution_id} did not finish within {WAIT_S}s")


@pytest.mark.parametrize("workers, path", [(True, "bulk"), (False, "general")], indirect=["workers"])
@pytest.mark.parametrize("destination", ["postgresql", "mysql"])
def test_a_narrow_table_moves_in_bulk_batches_of_the_bulk_row_cap_and_value_batches_of_batch_rows(
        workers, path: str, destination: str, pg_url: str, mysql_url: str) -> None:
    transport, topology, box = workers
    # Given 250,000 source rows of two integers and an empty destination table with a key
    source = sa.create_engine(pg_url)
    with source.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE src AS SELECT g::bigint AS id, mod(g * 7, 100003)::int AS v "
                             f"FROM generate_series(1, {ROWS}) g")
    dest_url = pg_url if destination == "postgresql" else mysql_url
    dest = sa.create_engine(dest_url)
    with dest.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE dst (id bigint PRIMARY KEY, v int)")
    # When the table is migrated at the default batch settings
    job = JobSpec(name="narrow", steps=[{"name": "read", "project_id": 1, "sql": "SELECT id, v FROM src"}],
                  destination={"project_id": 2, "table": "dst", "mode": "truncate_load"})
    projects = {1: ProjectSnapshot(id=1, name="source", engine="postgresql", url=pg_url),
                2: ProjectSnapshot(id=2, name="destination", engine=destination, url=dest_url)}
    transport.publish(RunRequest(execution_id=7, job_id=1, job=job, projects=projects, deadline=time.time() + WAIT_S,
                                 execution_key="key-7").encode(), queue=topology.runs)
    finished = _finished(transport, 7)
    # Then it completes in 100,000-row bulk batches (binary COPY or LOAD DATA text), or in
    # 10,000-row batches of values on the general path
    assert finished.status == "completed" and finished.counts["rows_inserted"] == ROWS, finished
    if path == "bulk":
        fmt = "pg_binary" if destination == "postgresql" else "mysql_csv"
        assert transport.batches == [(fmt, DEFAULT_BULK_BATCH_ROWS)] * 2 + [(fmt, ROWS - 2 * DEFAULT_BULK_BATCH_ROWS)]
    else:
        assert transport.batches == [(None, DEFAULT_BATCH_ROWS)] * (ROWS // DEFAULT_BATCH_ROWS)
    # And the destination holds exactly the source's rows
    with source.connect() as conn:
        expected = conn.exec_driver_sql("SELECT count(*), sum(id), sum(v::bigint * id) FROM src").one()
    with dest.connect() as conn:
        got = conn.exec_driver_sql("SELECT count(*), sum(id), sum(v * id) FROM dst").one()
        v_of = dict(conn.exec_driver_sql("SELECT id, v FROM dst WHERE id IN (1, 99999, 100000, 100001, 250000)").all())
    assert tuple(int(x) for x in got) == tuple(int(x) for x in expected)
    assert v_of == {i: i * 7 % 100003 for i in (1, 99999, 100000, 100001, 250000)}
    source.dispose()
    dest.dispose()
