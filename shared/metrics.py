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
===============================================  =========  ================  =====================================================

Queue kinds (the ``queue`` label) are :data:`QUEUE_KINDS`; map a queue name to its kind
with :func:`queue_kind`, which folds every ``<prefix>.batches.<execution id>`` into
``batches``.
"""
from __future__ import annotations

import threading
import time

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
    "WORKER_LAST_HEARTBEAT", "queue_kind", "record_heartbeat", "exposition", "start_metrics_server",
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
