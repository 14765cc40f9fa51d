"""Connections for :mod:`shared.transport.amqp`: parameters, per-thread links, error mapping.

Heartbeat policy (why a thread busy for minutes in database work keeps its connection):
pika's BlockingConnection only sends heartbeats while its own thread is inside pika, so

- per-thread publish/get links negotiate **no AMQP heartbeat** (``heartbeat=0``) and
  rely on TCP keepalive instead (probes after 60 s idle, every 15 s, 4 misses): the
  kernel keeps NAT/firewall state alive and detects a dead peer without the thread's
  help, and the broker never closes a link because its thread was busy. A link that
  died anyway fails on next use and the operation is retried on a new one.
- consumer connections keep a normal heartbeat (``heartbeat_s``, default 60 s): their
  thread does nothing but pump the connection; the handler runs on a separate thread.
- ``blocked_connection_timeout`` (default 60 s): when the broker blocks publishers (disk
  or memory alarm) the connection is dropped after that long and the publish is retried
  on a new one until its own timeout, instead of hanging forever.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika import exceptions as px

from shared.errors import TransportError

log = logging.getLogger(__name__)
T = TypeVar("T")

CONSUMER_HEARTBEAT_S = 60
BLOCKED_CONNECTION_TIMEOUT_S = 60.0
TCP_OPTIONS = {"TCP_KEEPIDLE": 60, "TCP_KEEPINTVL": 15, "TCP_KEEPCNT": 4}
RECONNECT_BACKOFF_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
# pika reads 4 KiB per recv() and appends each read to its frame buffer (bytes +=): a
# 128 KiB frame is then copied ~16 times. Reading whole frames at once removes that.
RECV_BYTES = 256 * 1024

# Errors after which a new connection may succeed (broker restart, network, forced close).
RETRYABLE = (px.AMQPConnectionError, px.ChannelWrongStateError, ConnectionError, OSError)
# Credentials and vhost problems: retrying cannot help.
TERMINAL = (px.AuthenticationError, px.ProbableAuthenticationError, px.ProbableAccessDeniedError,
            px.IncompatibleProtocolError)


def backoff_s(attempt: int) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based)."""
    return RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]


def connection_parameters(url: str, *, name: str, heartbeat_s: int) -> pika.URLParameters:
    """pika parameters from an ``amqp://``/``amqps://`` URL with our policy applied.

    Raises TransportError when the URL is malformed.
    """
    try:
        params = pika.URLParameters(url)
    except (ValueError, TypeError) as exc:
        raise TransportError(f"invalid AMQP URL: {exc}") from None
    params.heartbeat = heartbeat_s
    params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_S
    params.tcp_options = TCP_OPTIONS
    params.connection_attempts = 1
    params.client_properties = {"connection_name": name or "datamig"}
    return params


def connect(params: pika.ConnectionParameters) -> pika.BlockingConnection:
    """Open a BlockingConnection tuned for MiB bodies: large socket buffers and whole-frame
    reads (pika internals, applied only when present). Raises pika errors."""
    connection = pika.BlockingConnection(params)
    stream = getattr(connection._impl, "_transport", None)  # noqa: SLF001
    sock = getattr(stream, "_sock", None)
    if sock is not None and hasattr(stream, "_MAX_RECV_BYTES"):
        stream._MAX_RECV_BYTES = RECV_BYTES  # noqa: SLF001
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
    return connection


def channel_error(exc: px.ChannelClosed, what: str) -> TransportError:
    """A clear TransportError for a broker channel error (404, 405, 406 …)."""
    code, text = exc.reply_code, exc.reply_text
    if code == 406:
        return TransportError(
            f"{what}: PRECONDITION_FAILED - it already exists with different arguments or "
            f"flags; delete it or declare it the same way everywhere ({text})"
        )
    if code == 404:
        return TransportError(f"{what}: does not exist ({text})")
    return TransportError(f"{what}: broker error {code} ({text})")


def close_quietly(connection: pika.BlockingConnection | None) -> None:
    """Close a connection, ignoring every error (it may be dead already)."""
    if connection is None:
        return
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # noqa: BLE001 - best effort on a broken connection
        log.debug("closing a broken AMQP connection failed", exc_info=True)


class Link:
    """A connection and a confirming channel owned by one thread (never shared)."""

    def __init__(self, params: pika.ConnectionParameters) -> None:
        self.params = params
        self.owner = threading.current_thread()
        self.connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def channel(self) -> BlockingChannel:
        """The open channel, (re)connecting first if needed. Raises pika errors."""
        if self.connection is None or not self.connection.is_open:
            self.reset()
            self.connection = connect(self.params)
        if self._channel is None or not self._channel.is_open:
            self._channel = self.connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def drop_channel(self) -> None:
        """Forget a channel the broker closed; the next call opens a new one."""
        self._channel = None

    def reset(self) -> None:
        """Close and forget the connection; the next call reconnects."""
        connection, self.connection, self._channel = self.connection, None, None
        close_quietly(connection)

    def run(
        self,
        op: Callable[[BlockingChannel], T],
        *,
        what: str,
        deadline: float | None,
        is_closed: Callable[[], bool],
    ) -> T:
        """Run ``op`` on this thread's channel; reconnect with backoff on connection loss
        until ``deadline`` (monotonic; None = forever, still stopping when ``is_closed``).

        Raises TransportError: on a broker channel error (not retried), a terminal
        connection error, when the deadline passes, or when the transport closes.
        """
        attempt = 0
        while True:
            if is_closed():
                raise TransportError(f"{what}: transport is closed")
            try:
                return op(self.channel())
            except px.ChannelClosed as exc:
                self.drop_channel()
                raise channel_error(exc, what) from None
            except TERMINAL as exc:
                self.reset()
                raise TransportError(f"{what}: {exc!r}") from None
            except RETRYABLE as exc:
                self.reset()
                delay = backoff_s(attempt)
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise TransportError(f"{what}: broker unreachable ({exc!r})") from None
                log.warning("%s: connection lost (%r); reconnecting in %.2fs", what, exc, delay)
                time.sleep(delay)
                attempt += 1
