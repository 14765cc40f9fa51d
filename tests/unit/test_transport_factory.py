"""create_transport picks the implementation from the URL scheme (no network needed)."""
from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.transport import create_transport
from shared.transport.amqp import AmqpTransport
from shared.transport.memory import MemoryTransport


def test_memory_url_gives_a_memory_transport_with_options() -> None:
    transport = create_transport("memory://", name="all", dead_letter_queue="x.dead")
    assert isinstance(transport, MemoryTransport) and transport.dead_letter_queue == "x.dead"
    transport.close()


@pytest.mark.parametrize("url", ["amqp://guest:guest@localhost:5672/%2F", "amqps://u:p@broker/vhost", "AMQP://h/"])
def test_amqp_urls_give_an_amqp_transport_without_connecting(url: str) -> None:
    transport = create_transport(url, name="api")
    assert isinstance(transport, AmqpTransport)
    transport.close()


@pytest.mark.parametrize("url", ["redis://localhost", "localhost:5672", ""])
def test_an_unknown_scheme_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        create_transport(url)
