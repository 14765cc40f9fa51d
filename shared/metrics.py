"""Prometheus metrics shared by every service, and the workers' metrics server.

Every metric lives in the module-level ``REGISTRY`` (prometheus_client's default
registry, so the standard ``process_*`` and ``python_*`` collectors come along).
The API serves it at ``GET /metrics`` (see :func:`exposition`); each worker
(scheduler, extractor, loader) calls :func:`start_metrics_server` with
``DM_METRICS_PORT`` (0 = no server).

Label sets are bounded on purpose: a job (``job_name``), a status, a service, a
mode, an engine, a queue *kind* — never an execution id, a queue name with an
execution id in it, or a row value. The job label is ``job_name`` rather than
``job`` because Prometheus attaches its own ``job`` label to every scraped
series and would rename ours to ``exported_job``.

===============================================  =========  ================  =====================================================
Metric                                           Type       Labels            Meaning (who updates it)
===============================================  =========  ================  =====================================================
datamig_executions_total                         counter    job_name, status  executions that reached a final status (api recorder)
datamig_executions_running                       gauge      job_name          executions running now (api recorder)
datamig_rows_read_total                          counter    job_name          rows read from the final step (extractor)
datamig_rows_written_total                       counter    job_name, mode    rows inserted + updated + deleted (loader)
datamig_rows_failed_total                        counter    job_name          rows isolated as bad (loader)
datamig_execution_duration_seconds               histogram  job_name, status  finished executions, buckets 1 s … 24 h (api)
datamig_batch_load_seconds                       histogram  engine, mode      stage + merge of one batch (loader)
datamig_bytes_moved_total                        counter    job_name, stage   encoded batch bytes; stage extract | load
datamig_queue_depth_messages                     gauge      queue             messages waiting, summed per queue kind
datamig_queue_consumers                          gauge      queue             consumers attached, summed per queue kind
datamig_retries_total                            counter    job_name          retry executions scheduled (scheduler)
datamig_schedule_lag_seconds                     histogram  job_name          how late a cron tick fired (scheduler)
datamig_worker_heartbeats_total                  counter    service           heartbeats sent (each worker)
datamig_worker_last_heartbeat_timestamp_seconds  gauge      service           Unix time of the last heartbeat
datamig_phase_seconds                            histogram  service, phase,   exclusive time an execution spent in a phase
                                                            mode              (:data:`PHASE_NAMES`; extractor and loader)
===============================================  =========  ================  =====================================================

Queue kinds (the ``queue`` label) are :data:`QUEUE_KINDS`; map a queue name to its kind
with :func:`queue_kind`, which folds every ``<prefix>.batches.<execution id>`` into
``batches``.
"""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

__all__ = [
    "REGISTRY", "QUEUE_KINDS", "SERVICES", "EXECUTIONS", "EXECUTIONS_RUNNING", "ROWS_READ",
    "ROWS_WRITTEN", "ROWS_FAILED", "EXECUTION_DURATION", "BATCH_LOAD_LATENCY", "BYTES_MOVED",
    "QUEUE_DEPTH", "QUEUE_CONSUMERS", "RETRIES", "SCHEDULE_LAG", "WORKER_HEARTBEATS",
    "WORKER_LAST_HEARTBEAT", "PHASE_SECONDS", "PHASE_NAMES", "phase", "phased", "phase_iter", "phase_labels",
    "queue_kind", "record_heartbeat", "exposition", "start_metrics_server",
]

#: Services that export metrics (values of the ``service`` label).
SERVICES = ("api", "scheduler", "extractor", "loader")
#: Values of the ``queue`` label; ``other`` catches dead-letter and unknown queues.
QUEUE_KINDS = ("runs", "loads", "batches", "events", "control", "other")
#: Execution durations: a second to the 24 h maximum of ``timeout_minutes``.
DURATION_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
#: One batch: milliseconds to a minute.
BATCH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: How late a tick fired: within a poll interval up to ten minutes.
LAG_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

EXECUTIONS = Counter(
    "datamig_executions", "Executions that reached a final status.",
    ["job_name", "status"], registry=REGISTRY,
)
EXECUTIONS_RUNNING = Gauge(
    "datamig_executions_running", "Executions currently running.", ["job_name"], registry=REGISTRY,
)
ROWS_READ = Counter(
    "datamig_rows_read", "Rows read from the final step's result.", ["job_name"], registry=REGISTRY,
)
ROWS_WRITTEN = Counter(
    "datamig_rows_written", "Rows inserted, updated or deleted in the destination.",
    ["job_name", "mode"], registry=REGISTRY,
)
ROWS_FAILED = Counter(
    "datamig_rows_failed", "Rows rejected by the destination and recorded as failed.",
    ["job_name"], registry=REGISTRY,
)
EXECUTION_DURATION = Histogram(
    "datamig_execution_duration_seconds", "Start-to-finish time of finished executions.",
    ["job_name", "status"], buckets=DURATION_BUCKETS_S, registry=REGISTRY,
)
BATCH_LOAD_LATENCY = Histogram(
    "datamig_batch_load_seconds", "Time to stage and merge one batch into the destination.",
    ["engine", "mode"], buckets=BATCH_BUCKETS_S, registry=REGISTRY,
)
BYTES_MOVED = Counter(
    "datamig_bytes_moved", "Encoded batch bytes produced (extract) or applied (load).",
    ["job_name", "stage"], registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "datamig_queue_depth_messages", "Messages waiting in the broker, summed per queue kind.",
    ["queue"], registry=REGISTRY,
)
QUEUE_CONSUMERS = Gauge(
    "datamig_queue_consumers", "Consumers attached to the broker's queues, summed per queue kind.",
    ["queue"], registry=REGISTRY,
)
RETRIES = Counter(
    "datamig_retries", "Retry executions scheduled after a failure or timeout.",
    ["job_name"], registry=REGISTRY,
)
SCHEDULE_LAG = Histogram(
    "datamig_schedule_lag_seconds", "Seconds between a cron tick's due time and when it fired.",
    ["job_name"], buckets=LAG_BUCKETS_S, registry=REGISTRY,
)
WORKER_HEARTBEATS = Counter(
    "datamig_worker_heartbeats", "Heartbeats sent by a worker.", ["service"], registry=REGISTRY,
)
WORKER_LAST_HEARTBEAT = Gauge(
    "datamig_worker_last_heartbeat_timestamp_seconds", "Unix time of the worker's last heartbeat.",
    ["service"], registry=REGISTRY,
)

#: Values of the ``phase`` label of :data:`PHASE_SECONDS`. ``transport``: the loader waiting for
#: the next batch, the extractor waiting to publish one (backpressure); ``setup``: connecting,
#: claiming the execution and preparing staging; ``merge``: staging → destination statements
#: and sync_delete's deletes.
PHASE_NAMES = ("validate", "setup", "clear", "extract", "transport", "load", "merge", "verify", "commit")
#: One phase of one execution or batch: a tenth of a millisecond to an hour.
PHASE_BUCKETS_S = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 3600)
PHASE_SECONDS = Histogram(
    "datamig_phase_seconds", "Exclusive seconds spent in a phase of an execution (nested phases subtracted).",
    ["service", "phase", "mode"], buckets=PHASE_BUCKETS_S, registry=REGISTRY,
)

_servers_lock = threading.Lock()
_server_ports: set[int] = set()


def queue_kind(queue: str, *, prefix: str = "datamig") -> str:
    """The bounded ``queue`` label value for a broker queue name.

    ``<prefix>.batches.<execution id>`` becomes ``batches``; ``<prefix>.events.*`` becomes
    ``events``; names outside the prefix or of no known kind become ``other``.
    """
    head = f"{prefix}."
    if not queue.startswith(head):
        return "other"
    kind = queue[len(head):].split(".", 1)[0]
    return kind if kind in QUEUE_KINDS else "other"


def record_heartbeat(service: str, *, now: float | None = None) -> None:
    """Count one heartbeat of ``service`` and remember its time.

    Raises:
        ValueError: ``service`` is not one of :data:`SERVICES`.
    """
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {SERVICES}")
    WORKER_HEARTBEATS.labels(service=service).inc()
    WORKER_LAST_HEARTBEAT.labels(service=service).set(time.time() if now is None else now)


def exposition() -> tuple[bytes, str]:
    """The current text exposition of ``REGISTRY`` and its content type (for ``/metrics``)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def start_metrics_server(port: int) -> None:
    """Serve ``REGISTRY`` at ``http://0.0.0.0:<port>/metrics`` from a daemon thread.

    ``port`` 0 means metrics are off and nothing starts. A second call with the same
    port in the same process (``datamig serve all`` starts several workers) is a no-op.

    Raises:
        OSError: the port cannot be bound (in use, or privileged).
    """
    if port == 0:
        return
    with _servers_lock:
        if port in _server_ports:
            return
        start_http_server(port, addr="0.0.0.0", registry=REGISTRY)
        _server_ports.add(port)


# ---------------------------------------------------------------------------- phase timers
# Phases nest (the loader's ``load`` of a batch contains the session's ``merge``): each thread
# keeps a stack of running phases, and a phase's observation is its own time only, so the
# phases of one service add up to its busy time and never count a second twice.
_phase_state = threading.local()
_T = TypeVar("_T")


def phase_labels(service: str, mode: str) -> None:
    """Set the ``service`` and ``mode`` labels of this thread's phases (once per execution)."""
    _phase_state.labels = (service, mode)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` of the current thread's execution (exclusive of nested phases).

    Raises:
        ValueError: ``name`` is not one of :data:`PHASE_NAMES`.
    """
    if name not in PHASE_NAMES:
        raise ValueError(f"unknown phase {name!r}; one of {', '.join(PHASE_NAMES)}")
    stack: list[list[float]] = _phase_state.__dict__.setdefault("stack", [])
    now = time.perf_counter()
    if stack:  # pause the enclosing phase
        stack[-1][1] += now - stack[-1][0]
    stack.append([now, 0.0])
    try:
        yield
    finally:
        now = time.perf_counter()
        started, spent = stack.pop()
        service, mode = getattr(_phase_state, "labels", ("", ""))
        PHASE_SECONDS.labels(service=service, phase=name, mode=mode).observe(spent + now - started)
        if stack:  # resume the enclosing phase
            stack[-1][0] = now


def phased(name: str) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Decorator: every call of the function is timed as :func:`phase` ``name``."""
    def wrap(fn: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> _T:
            with phase(name):
                return fn(*args, **kwargs)
        return timed
    return wrap


def phase_iter(name: str, items: Iterable[_T]) -> Iterator[_T]:
    """``items``, with the time spent producing each one timed as :func:`phase` ``name``."""
    iterator = iter(items)
    while True:
        with phase(name):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item
