"""The contract fixture: one transport suite, run against every implementation."""
from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest

from shared.transport import create_transport
from tests.contract.harness import Harness


def _cleanup_amqp(url: str, harness: Harness) -> None:
    """Delete every queue and exchange the test created (the interface cannot delete exchanges)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in harness.queues | {harness.dead_letter_queue}:
            channel.queue_delete(name)
        for name in harness.exchanges | {harness.dead_letter_queue}:
            channel.exchange_delete(name)
    finally:
        connection.close()


@pytest.fixture(params=["memory", "amqp"])
def harness(request: pytest.FixtureRequest, queue_prefix: str) -> Iterator[Harness]:
    """Factory-style fixture: a fresh transport per implementation, cleaned up afterwards."""
    if request.param == "memory":
        url = "memory://"
    else:
        url = request.getfixturevalue("amqp_url")
    transport = create_transport(url, name=f"contract-{queue_prefix}", dead_letter_queue=f"{queue_prefix}.dead")
    item = Harness(transport, queue_prefix, request.param)
    yield item
    transport.close()
    if request.param == "amqp":
        _cleanup_amqp(url, item)
