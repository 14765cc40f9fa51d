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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from shared import metrics, phases
from shared.connections import ZERO_DATES_OPTION, build_url, create_db_engine
from shared.dialects import get_dialect
from shared.dialects.bulk import BULK_CHUNK_BYTES
from shared.engine_cache import EngineCache
from shared.errors import ValidationFailed
from shared.estimate import planner_estimate
from shared.extract.watermark import describe_final, incremental_read
from shared.jobspec import JobSpec
from shared.messages import Batch, EndOfBatches, LoadRequest, RunRequest
from shared.secrets import SecretBox
from shared.settings import DEFAULT_BULK_BATCH_ROWS
from shared.snapshots import ProjectSnapshot
from shared.topology import BATCH_QUEUE_EXPIRES_S, Topology
from shared.transport.base import Transport
from shared.worker import ExecutionContext, RequestWorker, error_info, final_status

log = logging.getLogger("datamig.extractor")


def build_engines(projects: Mapping[int, ProjectSnapshot], box: SecretBox,
                  cache: EngineCache | None = None) -> dict[int, sa.Engine]:
    """One engine per project of the snapshot (passwords decrypted here, in memory only); SQLite
    files are opened read-only (a missing one is an error, never a new empty file). With ``cache``,
    PostgreSQL engines are the worker's kept ones for exactly that URL (:mod:`shared.engine_cache`)."""
    if cache is not None:
        return {pid: cache.engine(build_url(snap.connection(box)), sqlite_mode="ro") for pid, snap in projects.items()}
    return {pid: create_db_engine(build_url(snap.connection(box)), poolclass=sa.pool.NullPool, sqlite_mode="ro")
            for pid, snap in projects.items()}


def zero_dates_by_project(job: JobSpec, projects: Mapping[int, ProjectSnapshot]) -> dict[int, str]:
    """Project id → "keep" | "null": the job's option (top level or with its destination), else the
    project's ``options.zero_dates``, else keep."""
    job_choice = job.zero_dates or job.destination.zero_dates
    return {pid: job_choice or snap.options.get(ZERO_DATES_OPTION) or "keep" for pid, snap in projects.items()}


@dataclass
class ExtractState:
    """One execution held by an extractor."""

    engines: dict[int, sa.Engine] = field(default_factory=dict)
    extraction: Any = None  # shared.extract.Extraction, once opened
    rows_read: int = 0
    load_sent: bool = False  # from here on the loader reports the final status
    incremental: Any = None  # shared.extract.watermark.IncrementalRead of an incremental job

    def counts(self) -> dict[str, int]:
        return {"rows_read": self.rows_read}

    @property
    def warnings(self) -> dict[str, int]:
        found = self.extraction.warnings if self.extraction is not None else {}
        return {**found, **(self.incremental.warnings if self.incremental is not None else {})}


class Extractor(RequestWorker[RunRequest, ExtractState]):
    """Runs executions one at a time per thread; ``concurrency`` threads per process."""

    service = "extractor"
    request_type = RunRequest
    announce_start = True

    def __init__(self, transport: Transport, topology: Topology, box: SecretBox, *, batch_rows: int,
                 batch_queue_max: int, heartbeat_s: float, concurrency: int = 1, bulk_text: bool = True,
                 bulk_binary: bool = True, bulk_batch_rows: int = DEFAULT_BULK_BATCH_ROWS) -> None:
        super().__init__(transport, topology, queue=topology.runs, concurrency=concurrency, heartbeat_s=heartbeat_s)
        self._box = box
        self._batch_rows, self._queue_max = batch_rows, batch_queue_max
        self._bulk_text, self._bulk_binary = bulk_text, bulk_binary
        self._bulk_batch_rows = bulk_batch_rows

    def new_state(self, request: RunRequest) -> ExtractState:
        return ExtractState()

    def cleanup(self, request: RunRequest, state: ExtractState) -> None:
        for engine in state.engines.values():
            self.engines.release(engine)

    def execute(self, request: RunRequest, ctx: ExecutionContext, state: ExtractState) -> None:
        """Validate (when the job asks), open the extraction, engage a loader, stream the batches."""
        job = request.job
        assert job is not None  # decode refuses a run request without its job
        state.engines = build_engines(request.projects, self._box, self.engines)
        metrics.phase_labels("extractor", job.destination.mode.value)
        if job.validate_before_execution:
            phases.enter(ctx, "validating")
            with metrics.phase("validate"):
                self._validate(job, state.engines, ctx)
        ctx.check()
        incr = state.incremental = incremental_read(job, request.watermark)  # the spec refuses it with a transform
        if incr is not None:  # first run: the column's kind from a describe
            incr.resolve_kind(lambda _: describe_final(job.steps, state.engines, timeout_s=max(1.0, ctx.remaining_s())))
        phases.enter(ctx, "extracting", estimate=planner_estimate(job.steps, state.engines))
        extraction = _extraction_for(job.transform, job.steps, state.engines,  # a transform: rows, never bulk text
                                    batch_rows=request.batch_rows or self._batch_rows,
                                    statement_timeout_s=max(1.0, ctx.remaining_s()),
                                    zero_dates=zero_dates_by_project(job, request.projects),
                                    **({"incremental": incr} if incr is not None else {}))
        state.extraction = extraction
        ctx.on_cancel(extraction.cancel)
        try:
            fmt = None if incr is not None else self._bulk_format(request)  # rows: the filter reads them
            into = self._binary_into(request, state.engines) if fmt and not job.transform else None
            with metrics.phase("extract"):
                columns = extraction.open(fmt, **({"binary_into": into} if into else {}))
            fmt = extraction.bulk_format if extraction.bulk else None  # a transform's rows: never bulk
            if fmt:
                log.info("execution %s: batches as %s", request.execution_id, fmt.split(":")[0])
            self._warn_privileged(ctx, extraction)
            ctx.check()
            queue = self._topology.batches(request.execution_id)
            self._transport.declare_queue(queue, max_length=self._queue_max, expires_s=BATCH_QUEUE_EXPIRES_S)
            load = LoadRequest(execution_id=request.execution_id, job_id=request.job_id, job=job, batch_queue=queue,
                               columns=tuple(columns), project=request.project(job.destination.project_id),
                               deadline=request.deadline, execution_key=request.execution_key)
            self._transport.publish(load.encode(), queue=self._topology.loads)
            state.load_sent = True
            self._stream(request, ctx, queue, state, fmt)
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
                log.warning("execution %s: %s", ctx.execution_id, p.message(strict=False))
            ctx.publish("progress", counts={"rows_read": 0}, warnings={WARNING_KIND: len(risky)},
                        report=privilege_checks(risky, strict=False))

    def _stream(self, request: RunRequest, ctx: ExecutionContext, queue: str, state: ExtractState,
                fmt: str | None) -> None:
        """Publish the result as batches (rows, or the source's bulk text in format ``fmt`` in chunks
        of ~BULK_CHUNK_BYTES or ``bulk_batch_rows`` rows: the fast path), then the end marker."""
        seq, position = 0, 1
        job_name = request.job.name if request.job else ""
        for batch in metrics.phase_iter("extract", _batches(state.extraction, fmt, self._bulk_batch_rows)):
            ctx.check()
            if state.incremental is not None and not (batch := {"rows": state.incremental.keep(batch["rows"])})["rows"]:
                continue  # every row above the watermark: left for the next run
            seq += 1
            body = Batch(execution_id=request.execution_id, seq=seq, first=position, **batch).encode()
            with metrics.phase("transport"):
                self._transport.publish(body, queue=queue, persistent=False, timeout_s=max(1.0, ctx.remaining_s()))
            size = batch["count"] if fmt else len(batch["rows"])
            metrics.ROWS_READ.labels(job_name=job_name).inc(size)
            metrics.BYTES_MOVED.labels(job_name=job_name, stage="extract").inc(len(body))
            position += size
            state.rows_read = position - 1
        ctx.check()
        warnings = state.warnings
        if warnings:  # recorded before the loader can finish the execution (it ignores later events)
            ctx.publish("heartbeat", counts=state.counts(), warnings=warnings)
        end = EndOfBatches(execution_id=request.execution_id, seq=seq + 1, rows_read=state.rows_read, ok=True,
                           watermark=state.incremental.result() if state.incremental is not None else {})
        self._transport.publish(end.encode(), queue=queue, persistent=False, timeout_s=max(1.0, ctx.remaining_s()))
        ctx.publish("extracted", counts=state.counts(), warnings=warnings)

    def _bulk_format(self, request: RunRequest) -> str | None:
        """The destination's bulk text (shared.dialects.bulk), when the fast path is on."""
        if not self._bulk_text or request.job is None:
            return None
        engine = request.project(request.job.destination.project_id).engine or ""
        try:
            return get_dialect(engine).bulk_import_format
        except Exception:  # noqa: BLE001 - an unknown engine simply takes the general path
            return None

    def _binary_into(self, request: RunRequest, engines: dict[int, sa.Engine]) -> dict | None:
        """A PostgreSQL destination's column types, so that a PostgreSQL source may pass its result
        through in binary COPY form where they match (:mod:`shared.dialects.pgbinary`; the loader
        checks again); None when that is off or cannot apply."""
        from shared.dialects import pgbinary

        job = request.job
        if not self._bulk_binary or job is None or not job.steps:
            return None
        dest, source = job.destination, engines.get(job.steps[-1].project_id)
        engine = engines.get(dest.project_id)
        if engine is None or source is None or {engine.dialect.name, source.dialect.name} != {"postgresql"}:
            return None
        try:
            raw = engine.raw_connection()
            try:
                return pgbinary.by_lower_name(pgbinary.table_types(raw.driver_connection, dest.table)) or None
            finally:
                raw.close()
        except Exception:  # noqa: BLE001 - the text path needs none of this
            log.debug("destination types for the binary path unavailable", exc_info=True)
            return None

    @staticmethod
    def _validate(job: JobSpec, engines: dict[int, sa.Engine], ctx: ExecutionContext) -> None:
        """Raises ValidationFailed with the check report when a check fails."""
        from shared.validation import failure_may_heal, validate_job

        report = validate_job(job.steps, job.destination, engines,
                              timeout_s=max(1.0, min(60.0, ctx.remaining_s())), transform=job.transform)
        failed = [c for c in report if not c["ok"]]
        if failed:
            messages_ = dict.fromkeys(c["message"] for c in failed)  # unique, in order
            error = ValidationFailed("validation failed: " + "; ".join(messages_), report)
            error.transient = failure_may_heal(report)
            raise error

    def report_failure(self, request: RunRequest, ctx: ExecutionContext, exc: Exception,
                       state: ExtractState) -> None:
        """Before the loader was engaged: the final event. After: an aborting end marker (the loader
        rolls back and reports); if that cannot be sent, the final event."""
        info = error_info(exc)
        status = final_status(info, ctx)
        log.warning("execution %s %s: %s", request.execution_id, status, info["message"])
        report = info.pop("report", None)
        try:
            if state.load_sent:
                end = EndOfBatches(execution_id=request.execution_id, seq=0, rows_read=state.rows_read, ok=False,
                                   error={**info, "status": status})
                self._transport.publish(end.encode(), queue=self._topology.batches(request.execution_id),
                                        persistent=False, timeout_s=30.0)
                return
        except Exception:  # noqa: BLE001 - the loader may be gone; report directly below
            log.warning("could not tell the loader to abort execution %s", request.execution_id, exc_info=True)
        ctx.publish("finished", status=status, error=info, report=report or [], counts=state.counts(),
                    warnings=state.warnings)


def _extraction_for(transform: str | None, steps: list, engines: Mapping[int, sa.Engine], **options: Any) -> Any:
    """:func:`shared.transform.extraction_for`, whose module (DuckDB and Arrow, some 60 MB resident)
    is imported only for a job with a transform."""
    if transform and transform.strip():
        from shared.transform import extraction_for

        return extraction_for(transform, steps, engines, **options)
    from shared.extract import Extraction

    return Extraction(steps, engines, **options)


def _batches(extraction: Any, fmt: str | None, bulk_rows: int) -> Iterator[dict[str, Any]]:
    """The payload fields of each Batch: rows (the extraction's ``batch_rows`` at a time), or bulk
    text chunks in format ``fmt`` (~BULK_CHUNK_BYTES or ``bulk_rows`` rows, whichever comes first)."""
    if fmt:
        for payload, count in extraction.bulk_batches(BULK_CHUNK_BYTES, max_rows=bulk_rows):
            yield {"fmt": fmt, "data": payload, "count": count}
    else:
        for rows in extraction.batches():
            yield {"rows": rows}
