"""AmqpTransport survives connections closed under it: by the broker, or a dropped socket."""
from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator

import pika
import pytest

from shared.transport.amqp import AmqpTransport
from tests.contract.harness import wait_until


def _close_on_the_broker(transport: AmqpTransport) -> None:
    """Close ALL broker connections (acceptable on the isolated test broker)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed here")
    result = subprocess.run(["rabbitmqctl", "close_all_connections", "test"],
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.skip(f"rabbitmqctl cannot reach the broker: {result.stderr.strip()[:200]}")


def _drop_sockets(transport: AmqpTransport) -> None:
    """Shut down this transport's sockets, as a network failure would."""
    connections = [item.connection for item in transport._links]  # noqa: SLF001 - test hook
    connections += [consumer.connection for consumer in transport._consumers]  # noqa: SLF001
    for connection in connections:
        if connection is not None:
            connection._impl._transport._sock.shutdown(socket.SHUT_RDWR)  # noqa: SLF001


@pytest.fixture
def transport(amqp_url: str, queue_prefix: str) -> Iterator[AmqpTransport]:
    transport = AmqpTransport(amqp_url, name="reconnect-test", dead_letter_queue=f"{queue_prefix}.dead")
    yield transport
    transport.close()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    for name in (f"{queue_prefix}.work", f"{queue_prefix}.consumed"):
        connection.channel().queue_delete(name)
    connection.close()


@pytest.mark.parametrize("break_connections", [_close_on_the_broker, _drop_sockets], ids=["broker", "socket"])
def test_publish_get_and_consume_work_again_after_the_connections_drop(
    transport: AmqpTransport, queue_prefix: str, break_connections
) -> None:
    # Given: a working publisher/getter and a running consumer
    work, consumed = f"{queue_prefix}.work", f"{queue_prefix}.consumed"
    transport.declare_queue(work)
    transport.declare_queue(consumed)
    seen: list[bytes] = []
    consumer = transport.consume(consumed, lambda m: seen.append(m.body))
    transport.publish(b"before", queue=consumed)
    transport.publish(b"queued", queue=work)
    wait_until(lambda: seen == [b"before"])
    # When: every connection is closed under the transport
    break_connections(transport)
    # Then: publish and get reconnect and retry; the consumer re-subscribes
    transport.publish(b"after", queue=work)
    assert [transport.get(work, timeout_s=5).body for _ in range(2)] == [b"queued", b"after"]
    transport.publish(b"after", queue=consumed)
    wait_until(lambda: seen[-1:] == [b"after"], timeout_s=15)
    assert seen == [b"before", b"after"]
    consumer.stop()
    assert transport.ping()
