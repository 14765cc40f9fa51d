"""Cancel requests: each worker listens on the control fanout and stops the executions it holds.

A cancel that arrives before its execution is registered is kept (the last 1000) and applied
when the execution registers, so a cancel can never be lost to a race with the run request.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from shared import messages
from shared.messages import Cancel
from shared.topology import Topology
from shared.transport.base import Consumer, Message, Transport

if TYPE_CHECKING:
    from shared.worker import ExecutionContext

log = logging.getLogger("datamig.worker")
CONTROL_QUEUE_EXPIRES_S = 120.0


class ControlListener:
    """Receives cancel requests on the control fanout and routes them to running executions."""

    def __init__(self, transport: Transport, topology: Topology, worker: str) -> None:
        self._transport, self._topology = transport, topology
        self._queue = f"{topology.control}.{worker.replace('@', '.').replace(':', '.')}"
        self._active: dict[int, ExecutionContext] = {}
        self._recent: dict[int, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None

    def start(self) -> None:
        self._transport.declare_queue(self._queue, durable=False, expires_s=CONTROL_QUEUE_EXPIRES_S)
        self._transport.bind(self._queue, self._topology.control, "#")
        self._consumer = self._transport.consume(self._queue, self._handle, prefetch=10)

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop()
        self._transport.delete_queue(self._queue)

    def register(self, ctx: ExecutionContext) -> None:
        with self._lock:
            self._active[ctx.execution_id] = ctx
            pending = self._recent.pop(ctx.execution_id, None)
        if pending:
            ctx.request_stop(*pending)

    def unregister(self, ctx: ExecutionContext) -> None:
        with self._lock:
            self._active.pop(ctx.execution_id, None)

    def _handle(self, message: Message) -> None:
        cancel = messages.decode(message.body, expect=Cancel)
        with self._lock:
            ctx = self._active.get(cancel.execution_id)
            if ctx is None:
                self._recent[cancel.execution_id] = (cancel.status, cancel.reason)
                if len(self._recent) > 1000:
                    self._recent.pop(next(iter(self._recent)))
        if ctx is not None:
            log.info("stopping execution %s: %s", cancel.execution_id, cancel.reason)
            ctx.request_stop(cancel.status, cancel.reason)
