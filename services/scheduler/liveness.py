"""Signs of life straight from the broker, so that liveness never depends on the API.

Heartbeats reach history through the API's recorder; while the API is down (or slow,
or catching up) the metadata store's heartbeat columns go stale although the workers
are fine. Each scheduler replica therefore binds its own queue to the events exchange
and keeps, in memory, the newest sign of life per execution and service. The watchdog
takes the newer of this and the stored heartbeat. A replica that has listened for less
than ``DM_WORKER_LOST_S`` does not declare anything lost (it may have missed beats).
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from shared import messages
from shared.messages import Event
from shared.store.models import utcnow
from shared.topology import Topology
from shared.transport.base import Consumer, Message, Transport
from shared.wakeup import QUEUED

log = logging.getLogger("datamig.scheduler.liveness")
QUEUE_EXPIRES_S = 120.0
FORGET_AFTER = timedelta(hours=1)
WORKERS = ("extractor", "loader")


class Liveness:
    """The newest event per (execution, service), from this replica's own events queue."""

    def __init__(self, transport: Transport, topology: Topology, *,
                 on_queued: Callable[[], None] | None = None) -> None:
        self._transport = transport
        self._on_queued = on_queued
        self._queue = f"{topology.events}.liveness.{uuid.uuid4().hex[:10]}"
        self._exchange = topology.events
        self._beats: dict[tuple[int, str], datetime] = {}
        self._extracted: set[int] = set()
        self._finished: set[int] = set()
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._since: datetime | None = None

    def start(self) -> None:
        self._transport.declare_queue(self._queue, durable=False, expires_s=QUEUE_EXPIRES_S)
        self._transport.bind(self._queue, self._exchange, "#")
        self._consumer = self._transport.consume(self._queue, self._handle, prefetch=200)
        self._since = utcnow()

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop()
            self._consumer = None
        try:
            self._transport.delete_queue(self._queue)
        except Exception:  # noqa: BLE001 - the queue expires by itself
            log.debug("deleting %s failed", self._queue, exc_info=True)

    @property
    def started(self) -> bool:
        return self._consumer is not None

    def listening_s(self, now: datetime) -> float:
        """How long this replica has been listening (0 before :meth:`start`)."""
        return (now - self._since).total_seconds() if self._since and self._consumer else 0.0

    def _handle(self, message: Message) -> None:
        try:
            event = messages.decode(message.body, expect=Event)
        except Exception:  # noqa: BLE001 - the recorder dead-letters malformed events
            return
        if event.kind == QUEUED:
            if self._on_queued is not None:
                self._on_queued()
            return
        ts = datetime.fromtimestamp(event.ts, timezone.utc)
        with self._lock:
            key = (event.execution_id, event.service)
            if event.service in WORKERS and (key not in self._beats or ts > self._beats[key]):
                self._beats[key] = ts
            if event.kind == "extracted":
                self._extracted.add(event.execution_id)
            if event.kind == "finished" and event.service in WORKERS:
                self._finished.add(event.execution_id)

    def beat(self, run: int, service: str) -> datetime | None:
        with self._lock:
            return self._beats.get((run, service))

    def seen(self, run: int) -> bool:
        """Whether a worker has sent anything for this execution."""
        with self._lock:
            return any((run, s) in self._beats for s in WORKERS)

    def extracted(self, run: int) -> bool:
        with self._lock:
            return run in self._extracted

    def finished(self, run: int) -> bool:
        """A worker reported the final status (history may not have recorded it yet)."""
        with self._lock:
            return run in self._finished

    def forget_old(self, now: datetime) -> None:
        with self._lock:
            old = {run for (run, _), ts in self._beats.items() if now - ts > FORGET_AFTER}
            self._beats = {k: v for k, v in self._beats.items() if k[0] not in old}
            self._extracted -= old
            self._finished -= old
