"""Machinery every worker shares: the execution envelope, event publishing, heartbeats.

An :class:`ExecutionContext` is what a worker holds while it owns an execution: it
publishes events with increasing ``seq``, sends heartbeats from a background thread,
and is told by the control listener when the execution must stop.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from shared import messages, metrics
from shared.connections import mask_secrets_in_text
from shared.control import ControlListener
from shared.engine_cache import EngineCache
from shared.errors import Cancelled, DatamigError, TimedOut
from shared.faults import fault_point
from shared.jsonsafe import json_safe
from shared.logs import execution_context
from shared.messages import Event
from shared.topology import Topology
from shared.transport.base import Message, Transport

log = logging.getLogger("datamig.worker")
R = TypeVar("R", bound="ExecutionRequest")
S = TypeVar("S", bound="ExecutionState")


def worker_name(service: str) -> str:
    return f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def is_transient_error(exc: BaseException) -> bool:
    """Whether retrying may heal ``exc``: by the SQLSTATE / error number of the engine whose driver
    raised it (:mod:`shared.dialects.classify`, which also holds the rule for unknown errors)."""
    from shared.dialects.classify import TRANSIENT, classify_error

    return classify_error(exc) == TRANSIENT


def error_info(exc: BaseException) -> dict[str, Any]:
    """The error as history records it: message, kind, stack trace, whether a retry can heal it."""
    if isinstance(exc, DatamigError):
        kind, transient = exc.kind, exc.transient
    else:
        kind, transient = type(exc).__name__, is_transient_error(exc)
    message = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    info = {"message": mask_secrets_in_text(message), "kind": kind, "transient": transient,
            "trace": mask_secrets_in_text(trace)}
    if getattr(exc, "report", None):
        info["report"] = exc.report  # type: ignore[attr-defined]
    return info


def jsonable(value: Any) -> Any:
    """A JSON-safe rendering of a row value for history (see :func:`shared.jsonsafe.json_safe`)."""
    return json_safe(value)


class ExecutionContext:
    """One execution held by one worker: events, heartbeats, stop requests."""

    def __init__(self, transport: Transport, topology: Topology, *, execution_id: int, job_id: int, service: str,
                 worker: str, deadline: float, heartbeat_s: float, counts: Callable[[], dict]) -> None:
        self.execution_id, self.job_id = execution_id, job_id
        self._transport, self._topology = transport, topology
        self._service, self._worker, self._deadline = service, worker, deadline
        self._counts = counts
        self._seq = 0
        self._lock = threading.Lock()
        self.stop_status: str | None = None
        self.stop_reason = ""
        self._cancel_hooks: list[Callable[[], None]] = []
        self._hb_stop = threading.Event()
        self._hb = threading.Thread(target=self._heartbeat_loop, args=(heartbeat_s,), daemon=True,
                                    name=f"heartbeat-{execution_id}")

    def start(self) -> None:
        self._hb.start()

    def close(self) -> None:
        self._hb_stop.set()

    def publish(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self._seq += 1
            event = Event(execution_id=self.execution_id, job_id=self.job_id, kind=kind, service=self._service,
                          worker=self._worker, seq=self._seq, **fields)
            self._transport.publish(event.encode(), exchange=self._topology.events,
                                    routing_key=f"{kind}.{self.execution_id}", persistent=kind == "finished")

    def _heartbeat_loop(self, every_s: float) -> None:
        """Beat at once (the watchdog knows the owner from its first second), then every ``every_s``;
        when an event went out before :meth:`start` (``started``), that was the first sign of life."""
        if self._seq and self._hb_stop.wait(every_s):
            return
        while not self._hb_stop.is_set():
            try:
                self.publish("heartbeat", counts=self._counts())
                metrics.record_heartbeat(self._service)
            except Exception:  # noqa: BLE001 - a missed heartbeat is not fatal
                log.warning("heartbeat for execution %s not sent", self.execution_id, exc_info=True)
            self._hb_stop.wait(every_s)

    def on_cancel(self, hook: Callable[[], None]) -> None:
        self._cancel_hooks.append(hook)

    def request_stop(self, status: str, reason: str) -> None:
        """Called by the control listener: remember why and interrupt running statements."""
        if self.stop_status is None:
            self.stop_status, self.stop_reason = status, reason
        for hook in list(self._cancel_hooks):
            try:
                hook()
            except Exception:  # noqa: BLE001 - best effort interruption
                log.warning("cancel hook failed for execution %s", self.execution_id, exc_info=True)

    def remaining_s(self) -> float:
        return self._deadline - time.time() if self._deadline else float("inf")

    def check(self) -> None:
        """Raise Cancelled/TimedOut when the execution must stop now."""
        if self.stop_status == "timed_out" or self.remaining_s() <= 0:
            raise TimedOut("execution exceeded its timeout")
        if self.stop_status == "cancelled":
            raise Cancelled(self.stop_reason or "cancelled")
        if self.stop_status is not None:
            raise Cancelled(self.stop_reason or f"stopped ({self.stop_status})")


class ExecutionRequest(Protocol):
    """What the envelope reads of a request (RunRequest, LoadRequest)."""

    execution_id: int
    job_id: int
    deadline: float


class ExecutionState(Protocol):
    """What a worker keeps about one execution while it holds it (one object per execution)."""

    def counts(self) -> dict[str, int]:
        """The counts a heartbeat reports."""


def final_status(info: dict[str, Any], ctx: ExecutionContext) -> str:
    """The final status of a failed execution (pops ``status`` when the error names one): a
    timeout → timed_out, a cancel → cancelled, else failed, or the status a stop request gave."""
    status = info.pop("status", None) or {"timeout": "timed_out", "cancelled": "cancelled"}.get(
        str(info.get("kind", "")), "failed")
    if ctx.stop_status and status == "failed":
        status = ctx.stop_status
    return status


class RequestWorker(Generic[R, S]):
    """A worker that takes requests from one queue, one at a time per thread, and holds the
    envelope of each execution (:meth:`handle`): log context, the ExecutionContext (events,
    heartbeats), cancel registration, failure reporting and cleanup.

    Subclasses set ``service`` and ``request_type`` and implement :meth:`new_state` (the
    per-execution state object), :meth:`execute` (their own work: raise on failure) and
    :meth:`report_failure`; :meth:`cleanup` releases what the state holds. A message that
    does not decode (unknown type or version, malformed snapshot) is dead-lettered with the
    reason; a handler that raises anyway is logged and the thread goes on, so a bad request
    can never stop a worker.
    """

    service: ClassVar[str] = "worker"
    request_type: ClassVar[type] = object
    announce_start: ClassVar[bool] = False  # publish ``started`` before the first heartbeat

    def __init__(self, transport: Transport, topology: Topology, *, queue: str, concurrency: int,
                 heartbeat_s: float) -> None:
        self._transport, self._topology = transport, topology
        self._queue, self._concurrency, self._heartbeat_s = queue, concurrency, heartbeat_s
        self.name = worker_name(self.service)
        self._control = ControlListener(transport, topology, self.name)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.engines = EngineCache()  # PostgreSQL engines kept across executions (shared.engine_cache)

    def start(self) -> None:
        self._control.start()
        for i in range(self._concurrency):
            t = threading.Thread(target=self._loop, name=f"{self.service}-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking work; running executions finish (or are cut at ``timeout_s``)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)
        self._control.stop()
        self.engines.close()

    def new_state(self, request: R) -> S:
        raise NotImplementedError

    def execute(self, request: R, ctx: ExecutionContext, state: S) -> None:
        raise NotImplementedError

    def report_failure(self, request: R, ctx: ExecutionContext, exc: Exception, state: S) -> None:
        raise NotImplementedError

    def cleanup(self, request: R, state: S) -> None:
        """Release what the execution held (after the final event; must not raise)."""

    def handle(self, request: R) -> None:
        """Hold one execution from request to final event; never raises (failures become events)."""
        state = self.new_state(request)
        execution_id, job_id = request.execution_id, request.job_id
        ctx = ExecutionContext(self._transport, self._topology, execution_id=execution_id, job_id=job_id,
                               service=self.service, worker=self.name, heartbeat_s=self._heartbeat_s,
                               deadline=request.deadline, counts=state.counts)
        token = execution_context.set({"job_id": job_id, "execution_id": execution_id})
        fault_point(f"{self.service}_after_request")
        self._control.register(ctx)
        try:
            if self.announce_start:
                ctx.publish("started", counts=state.counts())
            ctx.start()
            self.execute(request, ctx, state)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, never lost
            self.report_failure(request, ctx, exc, state)
        finally:
            ctx.close()
            self._control.unregister(ctx)
            self.cleanup(request, state)
            execution_context.reset(token)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._transport.get(self._queue, timeout_s=1.0)
            except Exception:  # noqa: BLE001 - broker trouble: wait and try again
                log.warning("%s cannot take requests from %s; retrying", self.service, self._queue, exc_info=True)
                self._stop.wait(2.0)
                continue
            if message is not None:
                self._take(message)

    def _take(self, message: Message) -> None:
        """Decode and handle one request; an undecodable one is dead-lettered with the reason."""
        try:
            request = messages.decode(message.body, expect=self.request_type)
        except Exception as exc:  # noqa: BLE001 - malformed, unknown type or version: dead-letter, keep running
            self._transport.dead_letter(message, f"{type(exc).__name__}: {exc}")
            return
        try:
            self.handle(request)
        except Exception:  # noqa: BLE001 - last line of defence: the worker keeps running
            log.exception("%s failed to handle execution %s", self.service, getattr(request, "execution_id", "?"))
