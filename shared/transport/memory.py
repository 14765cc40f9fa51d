"""In-process transport: single-process mode and fast unit tests (dramatiq's StubBroker).

(A little over 300 lines: the whole Transport interface plus AMQP's exchange routing rules,
kept together so that its behaviour can be read against :mod:`.amqp` side by side.)

Every queue is a :class:`queue.Queue` (bounded by ``max_length``); exchanges route with
the AMQP rules (topic ``*``/``#``, fanout, direct). It keeps the delivery rules of
:mod:`shared.transport.base` and the same error behaviour as the AMQP transport:
publishing to a missing queue or exchange and get/consume on a missing queue raise
TransportError; a message routed by an exchange to no queue is dropped, as in AMQP.
Differences, by design: nothing survives the process, ``expires_s`` and ``durable`` are
recorded but have no effect, ``prefetch`` is ignored (each consumer handles one message
at a time), and an ``exclusive`` queue is deleted when its last consumer stops.
"""
from __future__ import annotations

import collections
import logging
import queue as queue_mod
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

from shared.errors import TransportError
from shared.transport._headers import check_headers
from shared.transport.base import Consumer, ExchangeKind, Handler, Message, Transport

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often blocked publishers and idle consumers re-check stop/close flags
MAX_KEPT_ERRORS = 100  # handler exceptions kept for join(); older ones are dropped


@lru_cache(maxsize=4096)
def topic_matches(pattern: str, key: str) -> bool:
    """Whether a topic binding ``pattern`` (``*`` = one word, ``#`` = zero or more) matches ``key``."""
    return _match(tuple(pattern.split(".")), tuple(key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return head in ("*", words[0]) and _match(rest, words[1:])


@dataclass
class _Queue:
    name: str
    args: tuple
    exclusive: bool
    q: queue_mod.Queue = field(default_factory=queue_mod.Queue)
    consumers: int = 0
    deleted: bool = False


@dataclass
class _Exchange:
    kind: ExchangeKind
    bindings: set[tuple[str, str]] = field(default_factory=set)  # (queue, routing key)

    def routes(self, routing_key: str) -> set[str]:
        if self.kind == "fanout":
            return {q for q, _ in self.bindings}
        if self.kind == "direct":
            return {q for q, key in self.bindings if key == routing_key}
        return {q for q, key in self.bindings if topic_matches(key, routing_key)}


class _MemoryConsumer(Consumer):
    """Runs a handler over one queue on a daemon thread, one message at a time."""

    def __init__(self, transport: MemoryTransport, target: _Queue, handler: Handler) -> None:
        self._transport, self._target, self._handler = transport, target, handler
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"consume-{target.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current message; from the handler itself, return at once."""
        self._stopping.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        target = self._target
        try:
            while not self._stopping.is_set() and not target.deleted:
                try:
                    message = target.q.get(timeout=POLL_S)
                except queue_mod.Empty:
                    continue
                try:
                    self._transport._handle(message, self._handler)
                finally:
                    target.q.task_done()
        finally:
            self._transport._consumer_left(target)


class MemoryTransport(Transport):
    """A thread-safe in-memory broker. ``dead_letters`` holds (message, reason) pairs."""

    def __init__(self, *, name: str = "", dead_letter_queue: str = "datamig.dead") -> None:
        self.name = name
        self.dead_letter_queue = dead_letter_queue
        self.dead_letters: list[tuple[Message, str]] = []
        self._queues: dict[str, _Queue] = {}
        self._exchanges: dict[str, _Exchange] = {}
        self._consumers: list[_MemoryConsumer] = []
        self._errors: collections.deque[BaseException] = collections.deque(maxlen=MAX_KEPT_ERRORS)
        self._lock = threading.RLock()
        self._closed = False

    # --- topology -------------------------------------------------------------------
    def declare_queue(
        self,
        name: str,
        *,
        max_length: int | None = None,
        expires_s: float | None = None,
        durable: bool = True,
        exclusive: bool = False,
    ) -> None:
        """Create ``name`` if missing. Raises TransportError if it exists with other arguments."""
        args = (max_length, expires_s, durable, exclusive)
        with self._lock:
            self._check_open()
            existing = self._queues.get(name)
            if existing is None:
                self._queues[name] = _Queue(name, args, exclusive, queue_mod.Queue(max_length or 0))
            elif existing.args != args:
                raise TransportError(
                    f"queue {name!r} already exists with different arguments "
                    f"(max_length, expires_s, durable, exclusive) {existing.args} != {args}"
                )

    def declare_exchange(self, name: str, kind: ExchangeKind) -> None:
        """Create an exchange if missing. Raises TransportError if it exists with another kind."""
        with self._lock:
            self._check_open()
            existing = self._exchanges.setdefault(name, _Exchange(kind))
            if existing.kind != kind:
                raise TransportError(f"exchange {name!r} already exists as {existing.kind!r}, not {kind!r}")

    def bind(self, queue: str, exchange: str, routing_key: str = "#") -> None:
        """Bind; raises TransportError if the queue or the exchange does not exist."""
        with self._lock:
            self._queue(queue)
            self._exchange(exchange).bindings.add((queue, routing_key))

    def delete_queue(self, name: str) -> None:
        """Delete a queue, its messages and bindings; its consumers stop; missing is ignored."""
        with self._lock:
            target = self._queues.pop(name, None)
            for exchange in self._exchanges.values():
                exchange.bindings = {(q, key) for q, key in exchange.bindings if q != name}
        if target is not None:
            target.deleted = True

    def queue_depth(self, name: str) -> tuple[int, int]:
        """(messages ready, consumers); (0, 0) for a missing queue."""
        with self._lock:
            target = self._queues.get(name)
            return (target.q.qsize(), target.consumers) if target else (0, 0)

    # --- messages -------------------------------------------------------------------
    def publish(
        self,
        body: bytes,
        *,
        queue: str = "",
        exchange: str = "",
        routing_key: str = "",
        headers: dict | None = None,
        persistent: bool = True,
        timeout_s: float | None = None,
    ) -> None:
        """Enqueue ``body``; waits while a bounded queue is full.

        Raises TransportError when a target queue stays full past ``timeout_s``, when the
        queue or exchange does not exist, or when the transport is closed; ValueError
        unless exactly one of ``queue`` and ``exchange`` is given, or for a header value
        of a type the AMQP transport could not carry (see :mod:`._headers`).
        """
        check_headers(headers)
        targets, key = self._route(queue, exchange, routing_key)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for target in targets:
            message = Message(body=body, queue=target.name, headers=dict(headers or {}), routing_key=key)
            self._put(target, message, deadline, timeout_s)

    def get(self, queue: str, *, timeout_s: float = 1.0) -> Message | None:
        """Take one message or return None after ``timeout_s``. Raises TransportError if
        the queue does not exist or the transport is closed."""
        with self._lock:
            target = self._queue(queue)
        try:
            message = target.q.get(timeout=max(timeout_s, 0.0)) if timeout_s > 0 else target.q.get_nowait()
        except queue_mod.Empty:
            return None
        target.q.task_done()
        return message

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> Consumer:
        """Run ``handler`` on a background thread. Raises TransportError if the queue is missing."""
        with self._lock:
            target = self._queue(queue)
            target.consumers += 1
            consumer = _MemoryConsumer(self, target, handler)
            self._consumers.append(consumer)
        return consumer

    def dead_letter(self, message: Message, reason: str) -> None:
        """Append (message, reason) to ``dead_letters``."""
        log.warning("dead-lettering a message from %r: %s", message.queue, reason)
        with self._lock:
            self.dead_letters.append((message, reason))

    def ping(self) -> bool:
        return not self._closed

    def close(self) -> None:
        """Stop consumers (each finishes its current message); later calls raise TransportError."""
        with self._lock:
            self._closed = True
            consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.stop()

    def join(self, timeout_s: float = 10.0, *, queues: list[str] | None = None) -> None:
        """Wait until ``queues`` (default: every queue that has a consumer; a queue nobody
        consumes would never drain) are empty and their handlers finished, then re-raise
        the first handler exception since the last join, in the calling thread.

        Raises TimeoutError when they do not drain in time; whatever a handler raised.
        """
        deadline = time.monotonic() + timeout_s
        while not self._drained(queues, deadline):
            pass
        with self._lock:
            errors, self._errors = list(self._errors), collections.deque(maxlen=MAX_KEPT_ERRORS)
        if errors:
            raise errors[0]

    # --- internals ------------------------------------------------------------------
    def _drained(self, names: list[str] | None, deadline: float) -> bool:
        """One pass over the targets; True when all were already idle."""
        with self._lock:
            targets = [t for n, t in self._queues.items() if (n in names if names else t.consumers)]
        idle = True
        for target in targets:
            with target.q.all_tasks_done:
                while target.q.unfinished_tasks:
                    idle = False
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"queue {target.name!r} did not drain in time")
                    target.q.all_tasks_done.wait(min(remaining, POLL_S))
        return idle

    def _route(self, queue: str, exchange: str, routing_key: str) -> tuple[list[_Queue], str]:
        if bool(queue) == bool(exchange):
            raise ValueError("publish needs exactly one of queue= or exchange=")
        with self._lock:
            self._check_open()
            if queue:
                return [self._queue(queue)], queue
            names = self._exchange(exchange).routes(routing_key)
            return [self._queues[n] for n in sorted(names) if n in self._queues], routing_key

    def _put(self, target: _Queue, message: Message, deadline: float | None, timeout_s: float | None) -> None:
        while True:
            if self._closed or target.deleted:
                raise TransportError(f"cannot publish to {target.name!r}: transport closed or queue deleted")
            wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            try:
                target.q.put(message, timeout=max(wait, 0.0)) if wait > 0 else target.q.put_nowait(message)
                return
            except queue_mod.Full:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TransportError(f"queue {target.name!r} stayed full for {timeout_s}s") from None

    def _handle(self, message: Message, handler: Handler) -> None:
        """Run a handler; a failure dead-letters the message and is kept for join()."""
        try:
            handler(message)
        except Exception as exc:  # noqa: BLE001 - the consumer must survive any handler error
            self.dead_letter(message, f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._errors.append(exc)

    def _consumer_left(self, target: _Queue) -> None:
        with self._lock:
            target.consumers -= 1
            if target.exclusive and target.consumers == 0 and self._queues.get(target.name) is target:
                self.delete_queue(target.name)

    def _queue(self, name: str) -> _Queue:
        self._check_open()
        target = self._queues.get(name)
        if target is None:
            raise TransportError(f"queue {name!r} does not exist")
        return target

    def _exchange(self, name: str) -> _Exchange:
        self._check_open()
        exchange = self._exchanges.get(name)
        if exchange is None:
            raise TransportError(f"exchange {name!r} does not exist")
        return exchange

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("transport is closed")
