"""RabbitMQ transport on pika (see :mod:`shared.transport.base` for the delivery rules).

(A little over 300 lines: it implements the whole Transport interface; the link and the
consumer thread are already split out into :mod:`._amqp_link` and :mod:`._amqp_consumer`.)

- Each thread gets its own BlockingConnection + confirming channel (``threading.local``)
  for declare/publish/get; each ``consume`` runs on its own thread and connection
  (:mod:`._amqp_consumer`). Heartbeat policy: :mod:`._amqp_link`.
- Queues are durable and messages persistent by default; every publish waits for its
  publisher confirm (one round trip: that is what lets ``publish`` return only once the
  broker holds the message, and keeps batches in order when a full queue rejects one).
- ``max_length`` declares ``x-max-length`` + ``x-overflow: reject-publish``: the broker
  NACKs a publish to a full queue and ``publish`` retries with a short backoff until
  ``timeout_s``; it waits for room by asking the queue's depth (a bounded queue declared
  here), not by sending the body again, and asks first on the next publish to a queue
  that was full (a MiB batch sent again on every retry costs the broker and the sender
  CPU that the databases need). ``expires_s`` declares ``x-expires``. ``exclusive``
  queues are declared ``auto_delete`` instead (AMQP-exclusive queues could not be consumed from the
  consumer's own connection): they go away when their last consumer does.
- Publishing to ``queue=`` is ``mandatory``: a missing queue raises TransportError
  instead of losing the message; a message an exchange routes nowhere is dropped.
- ``dead_letter`` publishes to one durable fanout exchange + queue named
  ``dead_letter_queue``, with headers ``x-dm-reason`` and ``x-dm-queue``. Declared queues
  carry no broker-side dead-letter arguments, so declare arguments stay stable.
- Lost connections are re-opened with backoff; publish/get/declare retry on the new one,
  consumers re-subscribe (re-declaring queues and bindings this transport declared).
  Every pika error leaves as :class:`~shared.errors.TransportError`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pika
from pika import exceptions as px
from pika.adapters.blocking_connection import BlockingChannel

from shared.errors import TransportError
from shared.transport import _amqp_link as link
from shared.transport._amqp_consumer import AmqpConsumer
from shared.transport._headers import check_headers
from shared.transport.base import Consumer, ExchangeKind, Handler, Message, Transport

log = logging.getLogger(__name__)
T = TypeVar("T")


def _not_a_nack(record: logging.LogRecord) -> bool:
    """Backpressure is normal flow: drop pika's warning for every NACK of a full queue."""
    return not record.getMessage().startswith("Message was Nack'ed")


logging.getLogger("pika.adapters.blocking_connection").addFilter(_not_a_nack)

DEFAULT_DEAD_LETTER_QUEUE = "datamig.dead"
OPERATION_TIMEOUT_S = 30.0  # how long declare/bind/delete/depth/dead_letter retry a lost broker
FULL_BACKOFF_S = (0.002, 0.005, 0.01, 0.02, 0.05)  # retries of a publish NACKed by a full queue
MAX_REASON_CHARS = 2000
DEAD_LETTER_RETRY_S = 1.0


class AmqpTransport(Transport):
    """A RabbitMQ connection pool (one connection per thread); thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "",
        dead_letter_queue: str = DEFAULT_DEAD_LETTER_QUEUE,
        heartbeat_s: int = link.CONSUMER_HEARTBEAT_S,
        operation_timeout_s: float = OPERATION_TIMEOUT_S,
    ) -> None:
        """Raises TransportError when ``url`` is malformed (no connection is made yet)."""
        self.name = name
        self.dead_letter_queue = dead_letter_queue
        self.operation_timeout_s = operation_timeout_s
        self.parameters = link.connection_parameters(url, name=name, heartbeat_s=0)
        self.consumer_parameters = link.connection_parameters(url, name=f"{name}:consumer", heartbeat_s=heartbeat_s)
        self._local = threading.local()
        self._links: list[link.Link] = []
        self._consumers: list[AmqpConsumer] = []
        self._queues: dict[str, dict] = {}  # declared here: name -> queue_declare kwargs
        self._exchanges: dict[str, ExchangeKind] = {}
        self._bindings: set[tuple[str, str, str]] = set()  # (queue, exchange, key)
        self._dead_letter_ready = False
        self._lock = threading.Lock()
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
        """Create ``name`` if missing. Raises TransportError, e.g. when it exists with other
        arguments (PRECONDITION_FAILED) or the broker stays unreachable."""
        arguments: dict = {}
        if max_length is not None:
            arguments.update({"x-max-length": int(max_length), "x-overflow": "reject-publish"})
        if expires_s is not None:
            arguments["x-expires"] = max(1, int(expires_s * 1000))
        spec = {"durable": durable, "auto_delete": exclusive, "arguments": arguments or None}
        self._run(lambda ch: ch.queue_declare(name, **spec), what=f"declare queue {name!r}")
        with self._lock:
            self._queues[name] = spec

    def declare_exchange(self, name: str, kind: ExchangeKind) -> None:
        """Create a durable exchange. Raises TransportError (e.g. exists with another kind)."""
        self._run(lambda ch: ch.exchange_declare(name, exchange_type=kind, durable=True),
                  what=f"declare exchange {name!r}")
        with self._lock:
            self._exchanges[name] = kind

    def bind(self, queue: str, exchange: str, routing_key: str = "#") -> None:
        """Bind; raises TransportError when the queue or exchange is missing."""
        self._run(lambda ch: ch.queue_bind(queue, exchange, routing_key),
                  what=f"bind {queue!r} to {exchange!r}")
        with self._lock:
            self._bindings.add((queue, exchange, routing_key))

    def delete_queue(self, name: str) -> None:
        """Delete a queue and its messages; missing queues are ignored. Raises TransportError."""
        try:
            self._run(lambda ch: ch.queue_delete(name), what=f"delete queue {name!r}")
        except TransportError as exc:
            if "does not exist" not in str(exc):
                raise
        with self._lock:
            self._queues.pop(name, None)
            self._bindings = {b for b in self._bindings if b[0] != name}

    def queue_depth(self, name: str) -> tuple[int, int]:
        """(messages ready, consumers) by passive declare; (0, 0) if missing. Raises TransportError."""
        try:
            frame = self._run(lambda ch: ch.queue_declare(name, passive=True), what=f"queue {name!r}")
        except TransportError as exc:
            if "does not exist" in str(exc):
                return (0, 0)
            raise
        return (frame.method.message_count, frame.method.consumer_count)

    def redeclare(self, queue: str, channel: BlockingChannel) -> None:
        """Re-create a queue this transport declared, with its bindings (consumer reconnect)."""
        with self._lock:
            spec = self._queues.get(queue)
            bindings = [b for b in self._bindings if b[0] == queue]
            kinds = {b[1]: self._exchanges.get(b[1]) for b in bindings}
        if spec is None:
            return
        channel.queue_declare(queue, **spec)
        for _, exchange, key in bindings:
            if kinds[exchange]:
                channel.exchange_declare(exchange, exchange_type=kinds[exchange], durable=True)
            channel.queue_bind(queue, exchange, key)

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
        """Publish and wait for the broker's confirm; a full queue's NACK is retried.

        Raises TransportError when the queue stays full or the broker unreachable past
        ``timeout_s`` (None: wait, until the transport closes), when ``queue`` or
        ``exchange`` does not exist; ValueError unless exactly one of them is given or a
        header value has an unsupported type (see :mod:`._headers`).
        """
        if bool(queue) == bool(exchange):
            raise ValueError("publish needs exactly one of queue= or exchange=")
        check_headers(headers)
        properties = pika.BasicProperties(
            headers=headers or None,
            delivery_mode=pika.DeliveryMode.Persistent if persistent else pika.DeliveryMode.Transient,
        )
        key = queue or routing_key
        what = f"publish to {queue or exchange!r}"
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        full = 0
        if queue and getattr(self._local, "full_queue", None) == queue:  # full at the last publish: ask first
            full = self._wait_for_room(queue, what, deadline, full, timeout_s)
        while True:
            try:
                self._run(lambda ch: ch.basic_publish(exchange, key, body, properties, mandatory=bool(queue)),
                          what=what, deadline=deadline, retry_forever=deadline is None)
                return
            except _Nacked:
                self._local.full_queue = queue
                full = self._wait_for_room(queue, what, deadline, self._backoff(what, deadline, full, timeout_s),
                                           timeout_s)

    def _wait_for_room(self, queue: str, what: str, deadline: float | None, attempt: int,
                       timeout_s: float | None) -> int:
        """Wait until a bounded queue declared here holds fewer messages than its bound, asking
        its depth (a few bytes) rather than sending the body again to be refused."""
        bound = ((self._queues.get(queue) or {}).get("arguments") or {}).get("x-max-length")
        while bound is not None and self.queue_depth(queue)[0] >= bound:
            attempt = self._backoff(what, deadline, attempt, timeout_s)
        return attempt

    def _backoff(self, what: str, deadline: float | None, attempt: int, timeout_s: float | None) -> int:
        delay = FULL_BACKOFF_S[min(attempt, len(FULL_BACKOFF_S) - 1)]
        if deadline is not None and time.monotonic() + delay > deadline:
            raise TransportError(f"{what}: the queue stayed full for {timeout_s}s")
        if self._closed:
            raise TransportError(f"{what}: transport is closed")
        time.sleep(delay)
        return attempt + 1

    def get(self, queue: str, *, timeout_s: float = 1.0) -> Message | None:
        """One message, or None after ``timeout_s``: basic_get with auto-ack, and when the queue is
        empty a wait for the next delivery (:func:`_wait_one`, no polling: it arrives at once).

        Raises TransportError when the queue is missing or the broker stays unreachable.
        """
        deadline = time.monotonic() + timeout_s
        method, props, body = self._run(lambda ch: ch.basic_get(queue, auto_ack=True), what=f"get from {queue!r}",
                                        deadline=max(deadline, time.monotonic() + 1.0))
        if method is None and deadline > time.monotonic():
            method, props, body = self._run(lambda ch: _wait_one(ch, queue, deadline), what=f"get from {queue!r}",
                                            deadline=max(deadline, time.monotonic() + 1.0))
        if method is None:
            return None
        return Message(body=body, queue=queue, headers=props.headers or {},
                       routing_key=method.routing_key, redelivered=method.redelivered)

    def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> Consumer:
        """Start a consumer on its own thread and connection, once subscribed.

        Raises TransportError when the queue is missing or the broker unreachable."""
        self._check_open()
        consumer = AmqpConsumer(self, queue, handler, prefetch=prefetch)
        consumer.start()
        with self._lock:
            self._consumers.append(consumer)
        return consumer

    def call_handler(self, handler: Handler, message: Message) -> bool:
        """Run a handler; if it raises, dead-letter the message. False if that failed too."""
        try:
            handler(message)
        except Exception as exc:  # noqa: BLE001 - a consumer survives any handler error
            try:
                self.dead_letter(message, f"{type(exc).__name__}: {exc}")
            except TransportError:
                log.exception("could not dead-letter a message from %r; requeueing it", message.queue)
                time.sleep(DEAD_LETTER_RETRY_S)  # no hot redelivery loop while the DLQ is unusable
                return False
        return True

    def dead_letter(self, message: Message, reason: str) -> None:
        """Publish the message to the dead-letter queue with ``x-dm-reason``/``x-dm-queue``.

        Raises TransportError when the broker stays unreachable."""
        log.warning("dead-lettering a message from %r: %s", message.queue, reason)
        if not self._dead_letter_ready:
            name = self.dead_letter_queue
            self.declare_exchange(name, "fanout")
            self.declare_queue(name)
            self.bind(name, name, "")
            self._dead_letter_ready = True
        headers = {**message.headers, "x-dm-reason": reason[:MAX_REASON_CHARS], "x-dm-queue": message.queue}
        self.publish(message.body, exchange=self.dead_letter_queue, routing_key=message.queue,
                     headers=headers, timeout_s=self.operation_timeout_s)

    # --- lifecycle ------------------------------------------------------------------
    def ping(self) -> bool:
        """Whether the broker answers now (one reconnect attempt at most); never raises."""
        try:
            self._run(lambda ch: ch.connection.process_data_events(0), what="ping",
                      deadline=time.monotonic() + 0.1)
            return True
        except TransportError:
            return False

    def close(self) -> None:
        """Stop consumers, then close every thread's connection (on its own thread when that
        thread is alive: at its next call into the transport or pika)."""
        self._closed = True
        with self._lock:
            consumers, self._consumers = self._consumers, []
            links, self._links = self._links, []
        for consumer in consumers:
            consumer.stop()
        for item in links:
            self._close_link(item)

    @staticmethod
    def _close_link(item: link.Link) -> None:
        if item.owner is threading.current_thread() or not item.owner.is_alive():
            item.reset()
        elif item.connection is not None:
            try:
                item.connection.add_callback_threadsafe(item.reset)
            except px.AMQPError:
                pass

    # --- internals ------------------------------------------------------------------
    def _run(self, op: Callable[[BlockingChannel], T], *, what: str, deadline: float | None = None,
             retry_forever: bool = False) -> T:
        if deadline is None and not retry_forever:
            deadline = time.monotonic() + self.operation_timeout_s
        try:
            return self._link().run(op, what=what, deadline=deadline, is_closed=lambda: self._closed)
        except px.NackError:
            raise _Nacked() from None
        except px.UnroutableError:
            raise TransportError(f"{what}: no such queue (message returned unroutable)") from None

    def _link(self) -> link.Link:
        current = getattr(self._local, "link", None)
        if current is None:
            self._check_open()
            current = self._local.link = link.Link(self.parameters)
            with self._lock:
                dead = [item for item in self._links if not item.owner.is_alive()]
                self._links = [item for item in self._links if item.owner.is_alive()] + [current]
            for item in dead:
                item.reset()
        return current

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("transport is closed")


def _wait_one(ch: BlockingChannel, queue: str, deadline: float) -> tuple[Any, Any, Any]:
    """Wait until ``deadline`` for one delivery from ``queue``: a consumer with prefetch 1 (the broker
    sends nothing more until the ack), cancelled before that ack, so no other message is taken
    from the queue (pika requeues any not yet handed over). ``(None, None, None)`` when none came."""
    got: list[tuple[Any, Any, Any]] = []
    ch.basic_qos(prefetch_count=1)
    tag = ch.basic_consume(queue, lambda _ch, method, props, body: got.append((method, props, body)))
    try:
        while not got and (left := deadline - time.monotonic()) > 0:
            ch.connection.process_data_events(time_limit=left)
    finally:
        ch.basic_cancel(tag)
    if not got:
        return None, None, None
    ch.basic_ack(got[0][0].delivery_tag)
    return got[0]


class _Nacked(Exception):
    """The broker refused a publish (a full ``reject-publish`` queue)."""
