"""The transport seam: pick an implementation from the broker URL, as kombu does.

``memory://`` → :class:`~shared.transport.memory.MemoryTransport` (single process, tests);
``amqp://`` / ``amqps://`` → :class:`~shared.transport.amqp.AmqpTransport` (RabbitMQ).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.errors import ConfigError
from shared.transport.base import Consumer, ExchangeKind, Handler, Message, Transport

__all__ = ["Consumer", "ExchangeKind", "Handler", "Message", "Transport", "create_transport"]


def create_transport(url: str, *, name: str = "", **options: Any) -> Transport:
    """A new transport for ``url``; ``name`` labels its connections (``options`` go to the
    implementation, e.g. ``dead_letter_queue``). No global broker: pass it explicitly.

    Raises ConfigError for an unknown scheme; TransportError for a malformed AMQP URL.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from shared.transport.memory import MemoryTransport

        return MemoryTransport(name=name, **options)
    if scheme in ("amqp", "amqps"):
        from shared.transport.amqp import AmqpTransport

        return AmqpTransport(url, name=name, **options)
    raise ConfigError(f"unknown transport URL scheme {scheme!r}: use memory://, amqp:// or amqps://")
