"""Queue and exchange names, derived from one prefix (``DM_QUEUE_PREFIX``)."""
from __future__ import annotations

from dataclasses import dataclass

from shared.transport.base import Transport

BATCH_QUEUE_EXPIRES_S = 600.0


@dataclass(frozen=True)
class Topology:
    prefix: str = "datamig"

    @property
    def runs(self) -> str:
        return f"{self.prefix}.runs"

    @property
    def loads(self) -> str:
        return f"{self.prefix}.loads"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def recorder(self) -> str:
        return f"{self.prefix}.events.recorder"

    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    @property
    def dead(self) -> str:
        """Dead-letter queue: messages that could not be decoded or handled, with the reason."""
        return f"{self.prefix}.dead"

    def batches(self, execution_id: int) -> str:
        return f"{self.prefix}.batches.{execution_id}"

    def declare(self, transport: Transport) -> None:
        """Declare the fixed queues and exchanges (idempotent)."""
        transport.declare_queue(self.dead)
        transport.declare_queue(self.runs)
        transport.declare_queue(self.loads)
        transport.declare_exchange(self.events, "topic")
        transport.declare_exchange(self.control, "fanout")
        transport.declare_queue(self.recorder)
        transport.bind(self.recorder, self.events, "#")
