"""One AMQP consumer: a connection thread that only pumps pika, and a handler thread.

The connection thread owns the consumer's connection and keeps calling
``process_data_events`` so that heartbeats flow however long a handler runs; deliveries
go to a single handler thread (messages are handled one at a time, in order), which acks
through ``add_callback_threadsafe``. After a connection loss the thread reconnects with
backoff and consumes again; prefetched messages of the dead channel are skipped (the
broker redelivers them with ``redelivered=True``), so a message whose handler was running
when the connection dropped may be handled twice.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pika
from pika import exceptions as px
from pika.adapters.blocking_connection import BlockingChannel

from shared.errors import TransportError
from shared.transport import _amqp_link as link
from shared.transport.base import Consumer, Handler, Message

if TYPE_CHECKING:
    from shared.transport.amqp import AmqpTransport

log = logging.getLogger(__name__)

PUMP_S = 0.25  # longest a connection thread sleeps in pika before re-checking stop
START_TIMEOUT_S = 30.0


class _QueueGone(Exception):
    """The queue was deleted (broker cancelled the consumer) or is missing."""


class AmqpConsumer(Consumer):
    """Consumes ``queue`` until stopped; see the module docstring."""

    def __init__(self, transport: AmqpTransport, queue: str, handler: Handler, *, prefetch: int) -> None:
        self._transport, self.queue, self._handler, self._prefetch = transport, queue, handler, prefetch
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: TransportError | None = None
        self._generation = 0
        self._in_flight = 0
        self._handler_ident: int | None = None
        self._subscribed = False
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"handle-{queue}")
        self._thread = threading.Thread(target=self._run, name=f"consume-{queue}", daemon=True)
        self.connection: pika.BlockingConnection | None = None

    def start(self) -> None:
        """Start and wait for the first subscription. Raises TransportError if it fails."""
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            self.stop(0)
            raise TransportError(f"consume {self.queue!r}: no subscription after {START_TIMEOUT_S}s")
        if self._start_error is not None:
            raise self._start_error

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the current message (acked; prefetched ones are requeued). Called from
        the handler itself, it returns at once and the consumer ends after the handler."""
        self._stopping.set()
        if threading.current_thread() is self._thread:
            return
        if threading.get_ident() != self._handler_ident:
            self._thread.join(timeout_s)

    # --- connection thread -----------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stopping.is_set():
                try:
                    self._session(redeclare=attempt > 0)
                    return
                except _QueueGone as exc:
                    log.warning("consumer of %r ends: %s", self.queue, exc)
                    return
                except link.TERMINAL as exc:
                    log.error("consumer of %r ends: %r", self.queue, exc)
                    self._fail_start(TransportError(f"consume {self.queue!r}: {exc!r}"))
                    return
                except Exception as exc:  # noqa: BLE001 - pika/network errors, or a bug: never die
                    attempt = 0 if self._subscribed else attempt
                    delay = link.backoff_s(attempt)
                    log.warning("consumer of %r lost its connection (%r); retry in %.2fs", self.queue, exc, delay,
                                exc_info=not isinstance(exc, (*link.RETRYABLE, px.AMQPError)))
                    if not self._started.is_set():
                        self._fail_start(TransportError(f"consume {self.queue!r}: {exc!r}"))
                        return
                    self._stopping.wait(delay)
                    attempt += 1
        finally:
            self._started.set()
            self._worker.shutdown(wait=True)

    def _fail_start(self, error: TransportError) -> None:
        """Report ``error`` to ``start()`` if it is still waiting."""
        if self._started.is_set():
            return
        self._start_error = error
        self._started.set()

    def _session(self, *, redeclare: bool) -> None:
        """One connection's lifetime: subscribe, pump until stopped, drain, close."""
        self._subscribed = False
        connection = link.connect(self._transport.consumer_parameters)
        self.connection = connection
        try:
            channel = connection.channel()
            if redeclare:
                self._transport.redeclare(self.queue, channel)
            channel.basic_qos(prefetch_count=self._prefetch)
            with self._lock:
                self._generation += 1
                generation = self._generation
            deliver = functools.partial(self._on_delivery, connection, channel, generation)
            tag = self._subscribe(channel, deliver)
            self._subscribed = True
            self._started.set()
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=PUMP_S)
                if tag not in channel.consumer_tags:
                    raise _QueueGone("the broker cancelled the consumer (queue deleted?)")
            self._drain(connection, channel, tag)
        finally:
            with self._lock:
                self._generation += 1  # queued deliveries of this channel are now stale
            link.close_quietly(connection)

    def _subscribe(self, channel: BlockingChannel, deliver: Callable) -> str:
        try:
            return channel.basic_consume(self.queue, deliver)
        except px.ChannelClosedByBroker as exc:
            error = link.channel_error(exc, f"consume {self.queue!r}")
            if not self._started.is_set():
                self._fail_start(error)
            raise _QueueGone(str(error)) from None

    def _drain(self, connection: pika.BlockingConnection, channel: BlockingChannel, tag: str) -> None:
        """Stop deliveries, let the running handler finish and its ack go out."""
        if tag in channel.consumer_tags:
            channel.basic_cancel(tag)
        with self._lock:
            self._generation += 1
        while True:
            with self._lock:
                if self._in_flight == 0:
                    break
            connection.process_data_events(time_limit=PUMP_S)
        connection.process_data_events(time_limit=0)

    def _on_delivery(self, connection: pika.BlockingConnection, channel: BlockingChannel, generation: int,
                     _ch: BlockingChannel, method: pika.spec.Basic.Deliver,
                     props: pika.BasicProperties, body: bytes) -> None:
        message = Message(body=body, queue=self.queue, headers=props.headers or {},
                          routing_key=method.routing_key, redelivered=method.redelivered)
        with self._lock:
            self._in_flight += 1
        ack = functools.partial(self._settle, channel, method.delivery_tag)
        self._worker.submit(self._handle, message, generation, connection, ack)

    # --- handler thread ---------------------------------------------------------------
    def _handle(self, message: Message, generation: int, connection: pika.BlockingConnection,
                settle: Callable[[bool], None]) -> None:
        self._handler_ident = threading.get_ident()
        try:
            with self._lock:
                if generation != self._generation:
                    return  # its channel is gone: the broker redelivers it
            ok = self._transport.call_handler(self._handler, message)
            try:
                connection.add_callback_threadsafe(functools.partial(settle, ok))
            except (px.ConnectionWrongStateError, px.AMQPError):
                log.info("connection gone before the ack of a message from %r; it will be redelivered", self.queue)
        finally:
            with self._lock:
                self._in_flight -= 1

    @staticmethod
    def _settle(channel: BlockingChannel, delivery_tag: int, ok: bool) -> None:
        """Runs on the connection thread: ack, or requeue when dead-lettering failed."""
        if not channel.is_open:
            return
        if ok:
            channel.basic_ack(delivery_tag)
        else:
            channel.basic_nack(delivery_tag, requeue=True)
