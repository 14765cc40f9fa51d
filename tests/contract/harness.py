"""Helpers of the contract suite: the Harness a test gets, and wait_until."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from shared.errors import TransportError

from shared.transport import Message, Transport
from shared.transport.memory import MemoryTransport

WAIT_S = 10.0


def wait_until(predicate: Callable[[], object], timeout_s: float = WAIT_S) -> None:
    """Poll ``predicate`` until truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        time.sleep(0.01)


@dataclass
class Harness:
    """A transport plus names of its own (prefixed) and a way to read its dead letters."""

    transport: Transport
    prefix: str
    kind: str
    queues: set[str] = field(default_factory=set)
    exchanges: set[str] = field(default_factory=set)

    def q(self, name: str) -> str:
        self.queues.add(f"{self.prefix}.{name}")
        return f"{self.prefix}.{name}"

    def x(self, name: str) -> str:
        self.exchanges.add(f"{self.prefix}.x.{name}")
        return f"{self.prefix}.x.{name}"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead"

    def dead_letters(self, count: int) -> list[tuple[Message, str]]:
        """Wait for ``count`` dead letters and return them as (message, reason)."""
        transport = self.transport
        if isinstance(transport, MemoryTransport):
            wait_until(lambda: len(transport.dead_letters) >= count)
            return list(transport.dead_letters)
        found: list[tuple[Message, str]] = []
        deadline = time.monotonic() + WAIT_S
        while len(found) < count and time.monotonic() < deadline:
            try:
                message = transport.get(self.dead_letter_queue, timeout_s=0.5)
            except TransportError:  # not declared yet: the first dead letter declares it
                time.sleep(0.05)
                continue
            if message is not None:
                found.append((message, message.headers["x-dm-reason"]))
        assert len(found) == count, f"expected {count} dead letters, got {len(found)}"
        return found
