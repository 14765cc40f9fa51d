"""Failed rows reach the history whatever their values, on SQLite and PostgreSQL metadata stores.

NaN, ±Infinity, bytes, integers beyond 2**53, decimals, dates, UUIDs and NUL characters
are stored (as text where JSON cannot hold them) and read back through the API's JSON; a
failed-row write the store refuses anyway never costs the execution its outcome.
"""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.api.recorder import Recorder
from shared.jobspec import JobSpec
from shared.messages import Event
from shared.store.db import migrate, open_store, session_factory
from shared.store.executions import create_execution, execution_out
from shared.store.jobs import apply_job
from shared.store.models import ExecutionRow, FailedRowRow, JobRow, ProjectRow
from shared.topology import Topology
from shared.transport.memory import MemoryTransport

pytestmark = pytest.mark.integration
AWKWARD = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "big": 2**70, "id": 9007199254740993,
           "d": Decimal("1.50"), "b": b"\x00\xff", "t": "nul\x00here", "ts": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
           "day": date(2024, 2, 29), "u": uuid.UUID(int=1), "ok": 1.5}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'meta.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_database")())
    engine = open_store(url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        project = ProjectRow(name="p", engine="sqlite", database="/tmp/x.db", options={})
        s.add(project)
        s.flush()
        job = apply_job(JobRow(), JobSpec(name="j", steps=[{"name": "a", "project_id": project.id, "sql": "SELECT 1"}],
                                          destination={"project_id": project.id, "table": "t"}, max_retries=0))
        s.add(job)
        s.flush()
        execution_id = create_execution(s, job, trigger="manual").id
        s.commit()
    recorder = Recorder(sessions, MemoryTransport(), Topology(), retry_base_s=0, retry_max_s=0)
    yield recorder, sessions, execution_id
    engine.dispose()


def history(sessions, execution_id: int) -> tuple[dict, list[dict]]:
    """The execution and its failed rows as the API returns them (strict JSON: no NaN tokens)."""
    with sessions() as s:
        out = execution_out(s.get(ExecutionRow, execution_id))
        rows = [{"position": f.position, "values": f.values, "error": f.error}
                for f in s.scalars(sa.select(FailedRowRow).where(FailedRowRow.execution_id == execution_id)
                                   .order_by(FailedRowRow.position))]
    return json.loads(json.dumps(out, default=str, allow_nan=False)), json.loads(json.dumps(rows, allow_nan=False))


def test_failed_rows_with_values_json_cannot_hold_are_stored_as_text(store) -> None:
    recorder, sessions, eid = store
    # Given a loader reporting failed rows whose values are NaN, infinities, bytes, huge integers...
    recorder.apply(Event(execution_id=eid, kind="started", ts=1.0))
    recorder.apply(Event(execution_id=eid, kind="progress", ts=2.0, counts={"rows_read": 8, "rows_failed": 2}, failed_rows=[
        {"position": 2, "values": AWKWARD, "error": "MySQL/MariaDB cannot store the float nan\x00"},
        {"position": 3, "values": {"f": float("inf")}, "error": "cannot store inf"}]))
    recorder.apply(Event(execution_id=eid, kind="finished", status="partial_success", ts=3.0,
                         counts={"rows_read": 8, "rows_inserted": 6, "rows_failed": 2}))
    # Then the history holds both rows, every value readable as strict JSON
    execution, rows = history(sessions, eid)
    assert (execution["status"], execution["rows_failed"]) == ("partial_success", 2)
    assert [r["position"] for r in rows] == [2, 3]
    values = rows[0]["values"]
    assert (values["nan"], values["inf"], values["ninf"], values["ok"]) == ("NaN", "Infinity", "-Infinity", 1.5)
    assert (values["big"], values["id"], values["d"]) == (str(2**70), "9007199254740993", "1.50")
    assert (values["b"], values["t"], values["day"]) == ("\\x00ff", "nul\\x00here", "2024-02-29")
    assert values["ts"] == "2024-01-02T03:04:05+00:00" and values["u"] == str(uuid.UUID(int=1))
    assert rows[0]["error"] == "MySQL/MariaDB cannot store the float nan\\x00"
    assert rows[1]["values"] == {"f": "Infinity"}


def test_a_failed_row_the_store_refuses_never_loses_the_final_status(store) -> None:
    recorder, sessions, eid = store
    # Given a final event whose failed row cannot be stored (a position beyond any integer column)
    recorder.apply(Event(execution_id=eid, kind="started", ts=1.0))
    recorder.apply(Event(execution_id=eid, kind="finished", status="failed", ts=3.0,
                         error={"message": "100 consecutive rows failed", "kind": "too_many_failures"},
                         counts={"rows_read": 300, "rows_failed": 100},
                         failed_rows=[{"position": 2**80, "values": {"a": 1}, "error": "x"}]))
    # Then the status, counts and error are recorded, and the lost details are counted
    execution, rows = history(sessions, eid)
    assert (execution["status"], execution["rows_failed"]) == ("failed", 100)
    assert execution["error"]["kind"] == "too_many_failures"
    assert execution["warnings"] == {"failed_rows_not_stored": 1}
    assert rows == []
