"""The transport seam: a small interface with a RabbitMQ and an in-memory implementation.

Delivery rules every implementation keeps:

- ``publish`` to a bounded queue that is full blocks (retrying) until there is room or
  ``timeout_s`` passes, then raises :class:`~shared.errors.TransportError`: this is the
  backpressure that slows an extractor down to its loader's pace.
- ``get`` takes one message and acknowledges it at once (at-most-once). Workers use it
  for run and load requests, so that a request is never processed twice; a worker that
  dies is noticed by the heartbeat watchdog and the execution is retried as a new one.
- ``consume`` runs ``handler`` on a background thread for each message; a handler that
  returns acknowledges the message; a handler that raises dead-letters it with the
  reason (never an endless requeue loop).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

ExchangeKind = Literal["topic", "fanout", "direct"]


@dataclass
class Message:
    """A delivered message."""

    body: bytes
    queue: str
    headers: dict = field(default_factory=dict)
    routing_key: str = ""
    redelivered: bool = False


Handler = Callable[[Message], None]


class Consumer(ABC):
    """A running consumer; ``stop`` ends it after the current message."""

    @abstractmethod
    def stop(self, timeout_s: float = 10.0) -> None: ...


class Transport(ABC):
    """A message broker connection. Implementations are safe to use from several threads."""

    @abstractmethod
    def declare_queue(
        self,
        name: str,
        *,
        max_length: int | None = None,
        expires_s: float | None = None,
        durable: bool = True,
        exclusive: bool = False,
    ) -> None:
        """Create ``name`` if missing. ``max_length`` bounds it (publishers then wait);
        ``expires_s`` deletes it after that long unused. ``exclusive``: the queue goes
        away with its last consumer (AMQP declares it auto-delete: a queue exclusive to
        one connection could not be consumed from the consumer's own connection).
        Declaring an existing queue with other arguments raises TransportError."""

    @abstractmethod
    def declare_exchange(self, name: str, kind: ExchangeKind) -> None:
        """Create an exchange if missing."""

    @abstractmethod
    def bind(self, queue: str, exchange: str, routing_key: str = "#") -> None:
        """Route messages published to ``exchange`` with a matching key into ``queue``."""

    @abstractmethod
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
        """Send ``body`` to ``queue`` (default exchange) or to ``exchange`` with
        ``routing_key``. Raises TransportError when it cannot be delivered in time or
        ``queue``/``exchange`` does not exist (a message an exchange routes to no queue is
        dropped). Header values: str, bytes, bool, int, None, dict, list (AMQP tables
        cannot carry floats); others raise ValueError."""

    @abstractmethod
    def get(self, queue: str, *, timeout_s: float = 1.0) -> Message | None:
        """Take one message (acknowledged on return), or None after ``timeout_s``."""

    @abstractmethod
    def consume(self, queue: str, handler: Handler, *, prefetch: int = 1) -> Consumer:
        """Call ``handler`` for each message of ``queue`` on a background thread."""

    @abstractmethod
    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a message that cannot be handled to the dead-letter queue, with the reason."""

    @abstractmethod
    def delete_queue(self, name: str) -> None:
        """Delete a queue and its messages; missing queues are ignored."""

    @abstractmethod
    def queue_depth(self, name: str) -> tuple[int, int]:
        """(messages ready, consumers) of a queue; (0, 0) if it does not exist."""

    @abstractmethod
    def ping(self) -> bool:
        """Whether the broker is reachable now."""

    @abstractmethod
    def close(self) -> None:
        """Stop consumers and close connections."""
