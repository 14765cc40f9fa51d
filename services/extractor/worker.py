"""The extractor: takes run requests, runs the steps, streams the final result as batches.

For each execution it publishes ``started``, validates (when the job asks), opens the
extraction, declares the execution's bounded batch queue, hands the load to a loader
(LoadRequest), streams batches (blocking while the queue is full: backpressure) and
ends the queue with an end marker. If anything fails before the loader was engaged,
the extractor reports the final status itself; afterwards it ends the queue with
``ok=False`` and the loader rolls back and reports.
"""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from shared import messages, metrics
from shared.connections import ZERO_DATES_OPTION, build_url, create_db_engine
from shared.dialects import get_dialect
from shared.dialects.bulk import BULK_CHUNK_BYTES
from shared.errors import ValidationFailed
from shared.extract.watermark import describe_final, incremental_read
from shared.jobspec import DestinationSpec, JobSpec, StepSpec
from shared.logs import execution_context
from shared.messages import Batch, EndOfBatches, LoadRequest, RunRequest
from shared.secrets import SecretBox
from shared.store.projects import spec_from_snapshot
from shared.topology import BATCH_QUEUE_EXPIRES_S, Topology
from shared.transport.base import Transport
from shared.worker import ExecutionContext, RequestWorker, error_info

log = logging.getLogger("datamig.extractor")


def build_engines(projects: dict, box: SecretBox) -> dict[int, sa.Engine]:
    """One engine per project of the snapshot (passwords decrypted here, in memory only); SQLite
    files are opened read-only (a missing one is an error, never a new empty file)."""
    return {int(pid): create_db_engine(build_url(spec_from_snapshot(snap, box)), poolclass=sa.pool.NullPool,
                                       sqlite_mode="ro")
            for pid, snap in projects.items()}


def zero_dates_by_project(job: dict, projects: dict) -> dict[int, str]:
    """Project id → "keep" | "null": the job's option (top level or with its destination), else the
    project's ``options.zero_dates``, else keep."""
    job_choice = job.get("zero_dates") or (job.get("destination") or {}).get("zero_dates")
    return {int(pid): job_choice or (snap.get("options") or {}).get(ZERO_DATES_OPTION) or "keep"
            for pid, snap in projects.items()}


def _snapshot(projects: dict, project_id: int) -> dict:
    return projects.get(project_id) or projects[str(project_id)]


class Extractor(RequestWorker):
    """Runs executions one at a time per thread; ``concurrency`` threads per process."""

    service = "extractor"
    request_type = RunRequest

    def __init__(self, transport: Transport, topology: Topology, box: SecretBox, *, batch_rows: int,
                 batch_queue_max: int, heartbeat_s: float, concurrency: int = 1, bulk_text: bool = True) -> None:
        super().__init__(transport, topology, queue=topology.runs, concurrency=concurrency)
        self._box = box
        self._batch_rows, self._queue_max, self._heartbeat_s = batch_rows, batch_queue_max, heartbeat_s
        self._bulk_text = bulk_text

    def handle(self, request: RunRequest) -> None:
        """Run one execution to the end; never raises (failures become events)."""
        state: dict[str, Any] = {"rows_read": 0, "load_sent": False}
        ctx = ExecutionContext(self._transport, self._topology, run=request.run, job_id=request.job_id,
                               service="extractor", worker=self.name, deadline=request.deadline,
                               heartbeat_s=self._heartbeat_s, counts=lambda: {"rows_read": state["rows_read"]})
        token = execution_context.set({"job_id": request.job_id, "execution_id": request.run})
        self._control.register(ctx)
        engines: dict[int, sa.Engine] = {}
        try:
            ctx.publish("started", counts={"rows_read": 0})
            ctx.start()
            engines = build_engines(request.projects, self._box)
            self._run(request, ctx, engines, state)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, never lost
            self._report_failure(request, ctx, exc, state)
        finally:
            ctx.close()
            self._control.unregister(ctx)
            for engine in engines.values():
                engine.dispose()
            execution_context.reset(token)

    def _run(self, request: RunRequest, ctx: ExecutionContext, engines: dict[int, sa.Engine],
             state: dict[str, Any]) -> None:
        from shared.extract import Extraction

        job = request.job
        steps = [StepSpec.model_validate(s) for s in job["steps"]]
        destination = DestinationSpec.model_validate(job["destination"])
        if job.get("validate_before_execution", True):
            self._validate(steps, destination, engines, ctx)
        ctx.check()
        incr = state["incremental"] = incremental_read(job, request.watermark)
        if incr is not None:  # first run: the column's kind from a describe
            incr.resolve_kind(lambda _: describe_final(steps, engines, timeout_s=max(1.0, ctx.remaining_s())))
        extraction = Extraction(steps, engines, batch_rows=request.batch_rows or self._batch_rows,
                                statement_timeout_s=max(1.0, ctx.remaining_s()),
                                zero_dates=zero_dates_by_project(job, request.projects), incremental=incr)
        state["extraction"] = extraction
        ctx.on_cancel(extraction.cancel)
        try:
            fmt = None if incr is not None else self._bulk_format(request, destination)  # rows: the filter reads them
            columns = extraction.open(fmt)
            self._warn_privileged(ctx, extraction)
            ctx.check()
            queue = self._topology.batches(request.run)
            self._transport.declare_queue(queue, max_length=self._queue_max, expires_s=BATCH_QUEUE_EXPIRES_S)
            load = LoadRequest(run=request.run, job_id=request.job_id, job_name=job.get("name", ""),
                               batch_queue=queue,
                               columns=[c.to_dict() for c in columns], destination=destination.model_dump(mode="json"),
                               project=_snapshot(request.projects, destination.project_id),
                               deadline=request.deadline, execution_key=request.execution_key)
            self._transport.publish(load.encode(), queue=self._topology.loads)
            state["load_sent"] = True
            if extraction.bulk:
                self._stream_bulk(request, ctx, extraction, queue, state, fmt or "")
            else:
                self._stream(request, ctx, extraction, queue, state)
        finally:
            extraction.close()

    @staticmethod
    def _warn_privileged(ctx: ExecutionContext, extraction: Any) -> None:
        """History: a warning count and a report line per source role that is not read-only."""
        from shared.extract.preview import privilege_checks
        from shared.privileges import WARNING_KIND

        risky = {p.project_id: p for p in extraction.privileges if p.risky}
        if risky:
            for p in risky.values():
                log.warning("execution %s: %s", ctx.run, p.message(strict=False))
            ctx.publish("progress", counts={"rows_read": 0}, warnings={WARNING_KIND: len(risky)},
                        report=privilege_checks(risky, strict=False))

    def _stream(self, request: RunRequest, ctx: ExecutionContext, extraction: Any, queue: str,
                state: dict[str, Any]) -> None:
        seq, position = 0, 1
        job_name = request.job.get("name", "")
        incr = state.get("incremental")
        for rows in extraction.batches():
            ctx.check()
            rows = incr.keep(rows) if incr is not None else rows
            if not rows:
                continue
            seq += 1
            body = Batch(run=request.run, seq=seq, first=position, rows=rows).encode()
            self._transport.publish(body, queue=queue, persistent=False, timeout_s=max(1.0, ctx.remaining_s()))
            metrics.ROWS_READ.labels(job_name=job_name).inc(len(rows))
            metrics.BYTES_MOVED.labels(job_name=job_name, stage="extract").inc(len(body))
            position += len(rows)
            state["rows_read"] = position - 1
        self._end_stream(request, ctx, queue, seq, state)

    def _end_stream(self, request: RunRequest, ctx: ExecutionContext, queue: str, seq: int,
                    state: dict[str, Any]) -> None:
        ctx.check()
        extraction = state.get("extraction")
        incr = state.get("incremental")
        warnings = {**(extraction.warnings if extraction is not None else {}), **(incr.warnings if incr else {})}
        if warnings:  # recorded before the loader can finish the execution (it ignores later events)
            ctx.publish("heartbeat", counts={"rows_read": state["rows_read"]}, warnings=warnings)
        end = EndOfBatches(run=request.run, seq=seq + 1, rows_read=state["rows_read"], ok=True,
                           watermark=incr.result() if incr is not None else {})
        self._transport.publish(end.encode(), queue=queue, persistent=False, timeout_s=max(1.0, ctx.remaining_s()))
        ctx.publish("extracted", counts={"rows_read": state["rows_read"]}, warnings=warnings)

    def _bulk_format(self, request: RunRequest, destination: DestinationSpec) -> str | None:
        """The destination's bulk text (shared.dialects.bulk), when the fast path is on."""
        if not self._bulk_text:
            return None
        engine = _snapshot(request.projects, destination.project_id).get("engine", "")
        try:
            return get_dialect(engine).bulk_import_format
        except Exception:  # noqa: BLE001 - an unknown engine simply takes the general path
            return None

    def _stream_bulk(self, request: RunRequest, ctx: ExecutionContext, extraction: Any, queue: str,
                     state: dict[str, Any], fmt: str) -> None:
        """The fast path: the source's bulk text, in chunks of ~BULK_CHUNK_BYTES, as batch payloads."""
        seq, position = 0, 1
        job_name = request.job.get("name", "")
        for payload, count in extraction.bulk_batches(BULK_CHUNK_BYTES):
            ctx.check()
            seq += 1
            body = Batch(run=request.run, seq=seq, first=position, fmt=fmt, data=payload, count=count).encode()
            self._transport.publish(body, queue=queue, persistent=False, timeout_s=max(1.0, ctx.remaining_s()))
            metrics.ROWS_READ.labels(job_name=job_name).inc(count)
            metrics.BYTES_MOVED.labels(job_name=job_name, stage="extract").inc(len(body))
            position += count
            state["rows_read"] = position - 1
        self._end_stream(request, ctx, queue, seq, state)

    def _validate(self, steps: list[StepSpec], destination: DestinationSpec, engines: dict[int, sa.Engine],
                  ctx: ExecutionContext) -> None:
        """Raises ValidationFailed with the check report when a check fails."""
        from shared.validation import validate_job

        report = validate_job(steps, destination, engines, timeout_s=max(1.0, min(60.0, ctx.remaining_s())))
        failed = [c for c in report if not c["ok"]]
        if failed:
            messages_ = dict.fromkeys(c["message"] for c in failed)  # unique, in order
            error = ValidationFailed("validation failed: " + "; ".join(messages_), report)
            # a database that is down can come back; a wrong password, query or table cannot
            error.transient = all(c.get("transient", False) for c in failed)
            raise error

    def _report_failure(self, request: RunRequest, ctx: ExecutionContext, exc: Exception,
                        state: dict[str, Any]) -> None:
        info = error_info(exc)
        status = {"timeout": "timed_out", "cancelled": "cancelled"}.get(info["kind"], "failed")
        if ctx.stop_status and status == "failed":
            status = ctx.stop_status
        log.warning("execution %s %s: %s", request.run, status, info["message"])
        report = info.pop("report", None)
        try:
            if state["load_sent"]:
                end = EndOfBatches(run=request.run, seq=0, rows_read=state["rows_read"], ok=False,
                                   error={**info, "status": status})
                self._transport.publish(end.encode(), queue=self._topology.batches(request.run),
                                        persistent=False, timeout_s=30.0)
                return
        except Exception:  # noqa: BLE001 - the loader may be gone; report directly below
            log.warning("could not tell the loader to abort execution %s", request.run, exc_info=True)
        extraction = state.get("extraction")
        ctx.publish("finished", status=status, error=info, report=report or [],
                    counts={"rows_read": state["rows_read"]},
                    warnings=extraction.warnings if extraction is not None else {})
