"""The loader: owns one execution at a time per thread and applies its batches in one
destination transaction (see shared.load for the modes).

It takes a LoadRequest, opens the LoadSession, reads the execution's batch queue in
order until the end marker, then finishes the mode (sync_delete deletes), commits and
reports the final status. Any failure, cancel or timeout rolls the transaction back:
the destination is exactly as it was.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from services.loader.batches import BatchReader
from shared import messages, metrics, phases
from shared.connections import build_url
from shared.errors import DatamigError, WorkerLost
from shared.faults import fault_point
from shared.jobspec import Mode
from shared.load.overlap import check_overlap, state_json
from shared.load.results import FailedRow
from shared.load.state import ABANDONED, COMMITTED, ExecutionFenced, claim, ensure_state_table, mark_committed, settle
from shared.messages import Batch, EndOfBatches, LoadRequest
from shared.secrets import SecretBox
from shared.topology import Topology
from shared.transport.base import Transport
from shared.worker import ExecutionContext, RequestWorker, error_info, final_status, jsonable

log = logging.getLogger("datamig.loader")
PROGRESS_EVERY_S = 1.0
SETTLE_ATTEMPTS = 10  # seconds of asking the destination after a failed COMMIT


class BatchStreamBroken(DatamigError):
    """Batches went missing (e.g. the broker restarted and dropped transient messages).

    The execution is rolled back and retried as a whole."""

    transient = True
    kind = "transport"


class ExtractionAborted(DatamigError):
    """The extractor stopped mid-stream; carries its error."""

    def __init__(self, error: dict) -> None:
        self.error = error
        self.kind = str(error.get("kind", "source"))
        self.transient = bool(error.get("transient", False))
        super().__init__(str(error.get("message", "extraction failed")))


@dataclass
class LoadState:
    """One execution held by a loader."""

    engine: sa.Engine | None = None
    session: Any = None  # shared.load.LoadSession, once built
    rows_read: int = 0
    watermark: dict | None = None  # incremental jobs: the end marker's {from, to, kind, seen, lag}

    def staged(self) -> dict[str, int]:
        """The session's counts with ``rows_staged`` (empty before the session exists)."""
        return _staged(self.session.counts.to_dict()) if self.session is not None else {}

    def counts(self) -> dict[str, int]:
        return {"rows_read": self.rows_read, **self.staged()}

    def rollback(self) -> None:
        if self.session is not None:
            self.session.rollback()


class Loader(RequestWorker[LoadRequest, LoadState]):
    """Loads executions one at a time per thread; ``concurrency`` threads per process."""

    service = "loader"
    request_type = LoadRequest

    def __init__(self, transport: Transport, topology: Topology, box: SecretBox, *, heartbeat_s: float,
                 concurrency: int = 1) -> None:
        super().__init__(transport, topology, queue=topology.loads, concurrency=concurrency, heartbeat_s=heartbeat_s)
        self._box = box

    def new_state(self, request: LoadRequest) -> LoadState:
        return LoadState()

    def cleanup(self, request: LoadRequest, state: LoadState) -> None:
        if state.session is not None:
            state.session.close()
        if state.engine is not None:
            self.engines.release(state.engine)
        self._transport.delete_queue(request.batch_queue)

    def execute(self, request: LoadRequest, ctx: ExecutionContext, state: LoadState) -> None:
        """Apply the batch queue in one transaction, commit with the execution's row, report."""
        from shared.load import LoadSession

        assert request.project is not None  # decode refuses a load request without it
        destination = request.destination
        state.engine = engine = self.engines.engine(build_url(request.project.connection(self._box)),
                                                    sqlite_mode="rw")  # never a new file; kept: shared.engine_cache
        ensure_state_table(engine)
        session = LoadSession(engine, table=destination.table, columns=list(request.columns),
                              mode=Mode(destination.mode), key_columns=destination.key_columns,
                              allow_empty_source=destination.allow_empty_source,
                              max_delete_ratio=destination.max_delete_ratio,
                              allow_rounding=destination.allow_rounding, verify=destination.verify,
                              statement_timeout_s=max(1.0, ctx.remaining_s()))
        state.session = session
        ctx.on_cancel(session.cancel)
        metrics.phase_labels("loader", destination.mode.value)
        try:
            first = phases.load_start(destination.mode)
            phases.enter(ctx, first)
            with metrics.phase("setup"):
                session.begin(claim=lambda conn: claim(conn, execution_id=request.execution_id,
                                                       job_id=request.job_id, key=request.execution_key))
            if first != "loading":  # truncate_load cleared first; the others are loading already
                phases.enter(ctx, "loading")
            self._consume(request, ctx, session, state)
            check_overlap(state.watermark, session.key, table=destination.table)
            phases.enter(ctx, "applying")
            with metrics.phase("merge"):
                final = session.finish(extracted=state.rows_read, verifying=lambda: phases.enter(ctx, "verifying"))
            ctx.check()
            committed = {"rows_read": state.rows_read, **final.to_dict()}
            phases.enter(ctx, "committing")
            with metrics.phase("commit"):
                self._commit(session, engine, request, committed, state.watermark)
        except ExecutionFenced as exc:  # a duplicate or a zombie: whoever holds the row reports
            session.rollback()
            log.warning("execution %s not loaded: %s", request.execution_id, exc)
            return
        fault_point("loader_after_commit")
        status = "partial_success" if final.rows_failed else "completed"
        ctx.publish("finished", status=status, counts=_staged(committed), verification=session.verification,
                    watermark=state.watermark or {})
        log.info("execution %s %s: %s rows read, %s", request.execution_id, status, state.rows_read, final.to_dict())

    def _commit(self, session: Any, engine: sa.Engine, request: LoadRequest, counts: dict,
                watermark: dict | None = None) -> None:
        """COMMIT with the execution's committed row. When COMMIT itself fails its outcome is
        unknown (the connection may drop after the server committed): the state table tells.
        Raises the commit's error unless the destination holds the commit."""
        try:
            session.commit(before=lambda conn: mark_committed(conn, execution_id=request.execution_id, counts=counts,
                                                              key=request.execution_key,
                                                              watermark=state_json(watermark)))
        except DatamigError:
            session.rollback()
            for _ in range(SETTLE_ATTEMPTS):
                try:
                    settled = settle(engine, execution_id=request.execution_id, job_id=request.job_id,
                                     key=request.execution_key)
                except DatamigError:
                    settled = None
                if settled is not None and settled.outcome == COMMITTED:
                    log.warning("execution %s: COMMIT reported an error but the destination committed",
                                request.execution_id)
                    return
                if settled is not None and settled.outcome == ABANDONED:
                    raise  # nothing committed, and nothing of this execution can commit any more
                time.sleep(1.0)
            raise

    def _consume(self, request: LoadRequest, ctx: ExecutionContext, session: Any, state: LoadState) -> None:
        """Apply batches in order until the end marker (the next one is read while this one is
        written: :mod:`services.loader.batches`). Raises on abort, cancel or timeout."""
        reader = BatchReader(self._transport, request.batch_queue)
        try:
            self._apply_batches(request, ctx, session, state, reader)
        finally:
            reader.close()

    def _apply_batches(self, request: LoadRequest, ctx: ExecutionContext, session: Any, state: LoadState,
                       reader: BatchReader) -> None:
        expected, last_progress = 1, 0.0
        while True:
            ctx.check()
            with metrics.phase("transport"):
                found = reader.next(timeout_s=1.0)
            if found is None:
                continue
            item, size = found
            if isinstance(item, EndOfBatches):
                if not item.ok:
                    raise ExtractionAborted(item.error)
                if item.seq != expected:
                    raise BatchStreamBroken(f"batch stream incomplete: end marker {item.seq}, expected {expected}")
                state.rows_read, state.watermark = item.rows_read, dict(item.watermark or {})
                return
            if not isinstance(item, Batch) or item.seq != expected:
                raise BatchStreamBroken(
                    f"batch stream out of order: got {getattr(item, 'seq', '?')}, expected {expected}")
            expected += 1
            before = session.counts.to_dict()
            started = time.perf_counter()
            with metrics.phase("load"):
                failed = (session.write_bulk(item.data, item.count, item.fmt) if item.fmt
                          else session.write([tuple(r) for r in item.rows]))
            self._observe(request, session, before, started, size)
            state.rows_read = item.first + item.size - 1
            if failed or time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                last_progress = time.monotonic()
                ctx.publish("progress", counts=state.counts(), failed_rows=[_failed(f) for f in failed])

    def _observe(self, request: LoadRequest, session: Any, before: dict, started: float, size: int) -> None:
        after = session.counts.to_dict()
        mode = request.destination.mode.value
        written = sum(after[k] - before[k] for k in ("rows_inserted", "rows_updated", "rows_deleted"))
        engine = request.project.engine if request.project is not None else ""
        metrics.BATCH_LOAD_LATENCY.labels(engine=str(engine or ""), mode=mode).observe(time.perf_counter() - started)
        metrics.ROWS_WRITTEN.labels(job_name=request.job_name, mode=mode).inc(written)
        metrics.ROWS_FAILED.labels(job_name=request.job_name).inc(after["rows_failed"] - before["rows_failed"])
        metrics.BYTES_MOVED.labels(job_name=request.job_name, stage="load").inc(size)

    def report_failure(self, request: LoadRequest, ctx: ExecutionContext, exc: Exception, state: LoadState) -> None:
        """Roll back (the destination is as it was) and publish the final event with the error."""
        state.rollback()
        info = dict(exc.error if isinstance(exc, ExtractionAborted) else error_info(exc))
        status = final_status(info, ctx)
        if ctx.stop_status == "failed" and info.get("kind") == "cancelled":  # the scheduler's stop, not a user's
            status = "failed"
            info.update(message=ctx.stop_reason or str(info.get("message")), kind=WorkerLost.kind,
                        transient=WorkerLost.transient)
        report = info.pop("report", None) or []
        failed_count = state.session.counts.rows_failed if state.session else 0
        log.warning("execution %s %s (rolled back): %s", request.execution_id, status, info.get("message"))
        failed = [_failed(f) for f in getattr(exc, "failed_rows", None) or []]  # the stopping batch's rows
        ctx.publish("finished", status=status, error=info, report=report, failed_rows=failed,  # rolled back
                    verification=getattr(exc, "verification", None) or {},
                    counts={"rows_read": state.rows_read, "rows_inserted": 0, "rows_updated": 0,
                            "rows_skipped": 0, "rows_deleted": 0, "rows_failed": failed_count,
                            "rows_staged": state.staged().get("rows_staged", 0)})


def _staged(counts: dict) -> dict:
    """Counts plus ``rows_staged``: rows written inside the load transaction (committed or not)."""
    return {**counts, "rows_staged": counts["rows_inserted"] + counts["rows_updated"] + counts["rows_deleted"]}


def _failed(row: FailedRow) -> dict[str, Any]:
    """A refused row as history records it: its values JSON-safe."""
    found = row.to_dict()
    return {**found, "values": {k: jsonable(v) for k, v in found["values"].items()}}
