"""AmqpTransport: a publisher waiting for room in a full bounded queue does not send its body
again on every retry (a MiB batch refused over and over costs the broker and the sender CPU);
it asks the queue's depth, and asks first on its next publish to a queue that was full."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pika.adapters.blocking_connection import BlockingChannel

from shared.transport.amqp import AmqpTransport


@pytest.fixture
def transport(amqp_url: str, queue_prefix: str) -> Iterator[AmqpTransport]:
    transport = AmqpTransport(amqp_url, name="backpressure-test", dead_letter_queue=f"{queue_prefix}.dead")
    yield transport
    transport.close()


def test_a_full_queue_costs_one_refused_body_per_full_spell_not_one_per_retry(
        transport: AmqpTransport, queue_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    q = f"{queue_prefix}.bounded"
    transport.declare_queue(q, max_length=1, expires_s=60)
    sent: list[bytes] = []
    publish = BlockingChannel.basic_publish

    def counting(self, exchange, routing_key, body, *args, **kwargs):  # type: ignore[no-untyped-def]
        if routing_key == q:
            sent.append(body)
        return publish(self, exchange, routing_key, body, *args, **kwargs)

    monkeypatch.setattr(BlockingChannel, "basic_publish", counting)
    transport.publish(b"1", queue=q)
    # When: the consumer takes a message only after the publisher has waited a while, twice
    taken: list[bytes] = []

    def consume_slowly() -> None:
        for _ in range(2):
            time.sleep(0.6)
            taken.append(transport.get(q, timeout_s=5).body)  # type: ignore[union-attr]

    consumer = threading.Thread(target=consume_slowly)
    consumer.start()
    transport.publish(b"2", queue=q, timeout_s=10)
    transport.publish(b"3", queue=q, timeout_s=10)
    consumer.join()
    # Then: in order, nothing lost; "2" was refused once, "3" was never sent into the full queue
    assert taken + [transport.get(q, timeout_s=5).body] == [b"1", b"2", b"3"]  # type: ignore[union-attr]
    assert sent == [b"1", b"2", b"2", b"3"]
