"""MemoryTransport specifics: join(), topic matching, exclusive queues."""
from __future__ import annotations

import threading

import pytest

from shared.transport import Message
from shared.transport.memory import MemoryTransport, topic_matches


@pytest.fixture
def transport():
    transport = MemoryTransport()
    yield transport
    transport.close()


def test_join_reraises_a_handler_exception_in_the_calling_thread(transport: MemoryTransport) -> None:
    transport.declare_queue("work")

    def handler(message: Message) -> None:
        raise KeyError(message.body)

    transport.consume("work", handler)
    transport.publish(b"bad", queue="work")
    with pytest.raises(KeyError):
        transport.join()
    # Then: the message was dead-lettered, and the error is reported once
    assert [(m.body, reason) for m, reason in transport.dead_letters] == [(b"bad", "KeyError: b'bad'")]
    transport.join()


def test_join_waits_until_chained_handlers_have_finished(transport: MemoryTransport) -> None:
    transport.declare_queue("first")
    transport.declare_queue("second")
    done: list[bytes] = []
    transport.consume("first", lambda m: transport.publish(m.body + b"!", queue="second"))
    transport.consume("second", lambda m: done.append(m.body))
    for i in range(50):
        transport.publish(b"%d" % i, queue="first")
    transport.join()
    assert len(done) == 50


def test_join_times_out_when_a_handler_does_not_finish(transport: MemoryTransport) -> None:
    transport.declare_queue("slow")
    release = threading.Event()
    transport.consume("slow", lambda m: release.wait(5))
    transport.publish(b"x", queue="slow")
    with pytest.raises(TimeoutError):
        transport.join(0.2)
    release.set()
    transport.join()


def test_an_exclusive_queue_goes_away_with_its_last_consumer(transport: MemoryTransport) -> None:
    transport.declare_queue("mine", exclusive=True)
    transport.consume("mine", lambda m: None).stop()
    assert transport.queue_depth("mine") == (0, 0)
    transport.declare_queue("mine", exclusive=True)  # may be declared again


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("#", "a.b.c", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*", "a", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("#.c", "c", True),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.b.x.c", True),
        ("a.#.c", "a.b.x", False),
        ("*.b.*", "a.b.c", True),
        ("a.b", "a.b", True),
        ("a.b", "a.bb", False),
    ],
)
def test_topic_patterns_follow_amqp_rules(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches
