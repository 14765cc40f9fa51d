"""One transport contract, run against MemoryTransport and AmqpTransport (real RabbitMQ)."""
from __future__ import annotations

import threading
import time

import pytest

from shared.errors import DecodeError, TransportError
from shared.transport import Message
from tests.contract.harness import Harness, wait_until


def test_published_messages_are_got_in_order(harness: Harness) -> None:
    t, q = harness.transport, harness.q("order")
    t.declare_queue(q)
    for i in range(20):
        t.publish(b"m%d" % i, queue=q)
    bodies = [t.get(q).body for _ in range(20)]  # type: ignore[union-attr]
    assert bodies == [b"m%d" % i for i in range(20)]


def test_get_returns_none_when_the_queue_stays_empty(harness: Harness) -> None:
    t, q = harness.transport, harness.q("empty")
    t.declare_queue(q)
    assert t.get(q, timeout_s=0.1) is None


def test_get_waiting_on_an_empty_queue_takes_exactly_the_next_message(harness: Harness) -> None:
    """A get that waits (AMQP: a consumer, not a poll) takes one message; the others stay, in order."""
    t, q = harness.transport, harness.q("wait")
    t.declare_queue(q)

    def later() -> None:
        time.sleep(0.2)
        for i in range(3):
            t.publish(b"%d" % i, queue=q)

    publisher = threading.Thread(target=later)
    publisher.start()
    first = t.get(q, timeout_s=30)
    publisher.join()
    assert first is not None and first.body == b"0"
    assert [t.get(q, timeout_s=5).body for _ in range(2)] == [b"1", b"2"]  # type: ignore[union-attr]
    assert t.get(q, timeout_s=0.1) is None


def test_get_from_a_missing_queue_raises_transport_error(harness: Harness) -> None:
    with pytest.raises(TransportError):
        harness.transport.get(harness.q("missing"), timeout_s=0.1)


def test_consumer_handles_and_acks_every_message(harness: Harness) -> None:
    t, q = harness.transport, harness.q("consume")
    t.declare_queue(q)
    seen: list[bytes] = []
    consumer = t.consume(q, lambda m: seen.append(m.body), prefetch=5)
    for i in range(10):
        t.publish(b"%d" % i, queue=q)
    wait_until(lambda: len(seen) == 10)
    consumer.stop()
    # Then: nothing was left unacked (unacked messages would be back in the queue)
    assert seen == [b"%d" % i for i in range(10)]
    assert t.queue_depth(q) == (0, 0)


def test_handler_exception_dead_letters_with_reason_and_consumer_keeps_going(harness: Harness) -> None:
    t, q = harness.transport, harness.q("failing")
    t.declare_queue(q)
    handled: list[bytes] = []

    def handler(message: Message) -> None:
        if message.body == b"undecodable":
            raise DecodeError("not msgpack", message.body)
        if message.body == b"boom":
            raise ValueError("handler failed")
        handled.append(message.body)

    consumer = t.consume(q, handler)
    for body in (b"undecodable", b"boom", b"fine"):
        t.publish(body, queue=q, headers={"trace": "abc"})
    wait_until(lambda: handled == [b"fine"])
    dead = harness.dead_letters(2)
    consumer.stop()
    assert sorted((m.body, reason) for m, reason in dead) == [
        (b"boom", "ValueError: handler failed"),
        (b"undecodable", "DecodeError: not msgpack"),
    ]
    assert all(m.headers.get("trace") == "abc" for m, _ in dead)
    assert t.queue_depth(q)[0] == 0


def test_a_consumer_stopped_from_its_own_handler_acks_that_message(harness: Harness) -> None:
    t, q = harness.transport, harness.q("selfstop")
    t.declare_queue(q)
    seen: list[bytes] = []
    box: dict = {}

    def handler(message: Message) -> None:
        seen.append(message.body)
        if message.body == b"end":
            box["consumer"].stop()

    box["consumer"] = t.consume(q, handler)
    for body in (b"a", b"end", b"later"):
        t.publish(body, queue=q)
    wait_until(lambda: b"end" in seen)
    wait_until(lambda: t.queue_depth(q) == (1, 0))
    assert seen == [b"a", b"end"]
    assert t.get(q).body == b"later"  # type: ignore[union-attr]


def test_topic_exchange_routes_by_star_and_hash_patterns(harness: Harness) -> None:
    t, x = harness.transport, harness.x("events")
    progress, everything, job7 = harness.q("progress"), harness.q("all"), harness.q("job7")
    t.declare_exchange(x, "topic")
    for q, key in ((progress, "event.*.progress"), (everything, "#"), (job7, "event.7.#")):
        t.declare_queue(q)
        t.bind(q, x, key)
    t.publish(b"p7", exchange=x, routing_key="event.7.progress")
    t.publish(b"f8", exchange=x, routing_key="event.8.finished")
    t.publish(b"deep", exchange=x, routing_key="event.7.a.b")
    assert _drain(harness, progress) == [b"p7"]
    assert _drain(harness, everything) == [b"p7", b"f8", b"deep"]
    assert _drain(harness, job7) == [b"p7", b"deep"]


def test_fanout_exchange_copies_to_every_bound_queue_and_direct_matches_exactly(harness: Harness) -> None:
    t, fan, direct = harness.transport, harness.x("control"), harness.x("direct")
    a, b = harness.q("worker_a"), harness.q("worker_b")
    t.declare_exchange(fan, "fanout")
    t.declare_exchange(direct, "direct")
    for q in (a, b):
        t.declare_queue(q)
        t.bind(q, fan, "")
    t.bind(a, direct, "only-a")
    t.publish(b"cancel 5", exchange=fan, routing_key="ignored")
    t.publish(b"for a", exchange=direct, routing_key="only-a")
    t.publish(b"for nobody", exchange=direct, routing_key="only-b")
    assert _drain(harness, a) == [b"cancel 5", b"for a"]
    assert _drain(harness, b) == [b"cancel 5"]


def test_publish_to_a_full_queue_times_out_then_succeeds_once_a_consumer_takes_messages(
    harness: Harness,
) -> None:
    t, q = harness.transport, harness.q("bounded")
    t.declare_queue(q, max_length=2, expires_s=60)
    t.publish(b"1", queue=q)
    t.publish(b"2", queue=q)
    with pytest.raises(TransportError):
        t.publish(b"3", queue=q, timeout_s=0.3)
    # When: a consumer takes messages while the publisher waits
    taken: list[bytes] = []
    consumer = threading.Thread(target=lambda: [taken.append(t.get(q, timeout_s=5).body) for _ in range(2)])
    consumer.start()
    t.publish(b"3", queue=q, timeout_s=10)
    consumer.join()
    # Then: nothing was lost or reordered
    assert taken + [t.get(q).body] == [b"1", b"2", b"3"]  # type: ignore[union-attr]


def test_closing_the_transport_stops_a_publisher_waiting_forever(harness: Harness) -> None:
    t, q = harness.transport, harness.q("forever")
    t.declare_queue(q, max_length=1)
    t.publish(b"1", queue=q)
    errors: list[BaseException] = []

    def publish_forever() -> None:
        try:
            t.publish(b"2", queue=q, timeout_s=None)
        except TransportError as exc:
            errors.append(exc)

    publisher = threading.Thread(target=publish_forever)
    publisher.start()
    time.sleep(0.2)
    t.close()
    publisher.join(5)
    assert not publisher.is_alive() and len(errors) == 1


def test_delete_queue_drops_its_messages_and_ignores_missing_queues(harness: Harness) -> None:
    t, q = harness.transport, harness.q("doomed")
    t.declare_queue(q)
    t.publish(b"x", queue=q)
    t.delete_queue(q)
    t.delete_queue(q)
    assert t.queue_depth(q) == (0, 0)
    with pytest.raises(TransportError):
        t.publish(b"y", queue=q)


def test_queue_depth_counts_ready_messages_and_consumers(harness: Harness) -> None:
    t, q = harness.transport, harness.q("depth")
    assert t.queue_depth(q) == (0, 0)
    t.declare_queue(q)
    for _ in range(3):
        t.publish(b"x", queue=q)
    assert t.queue_depth(q) == (3, 0)
    consumer = t.consume(q, lambda m: None)
    wait_until(lambda: t.queue_depth(q) == (0, 1))
    consumer.stop()


def test_declaring_an_existing_queue_with_other_arguments_raises_transport_error(harness: Harness) -> None:
    t, q = harness.transport, harness.q("args")
    t.declare_queue(q, max_length=10)
    t.declare_queue(q, max_length=10)
    with pytest.raises(TransportError):
        t.declare_queue(q, max_length=20)
    t.publish(b"still usable", queue=q)
    assert t.get(q).body == b"still usable"  # type: ignore[union-attr]


def test_publishing_or_consuming_a_missing_queue_raises_transport_error(harness: Harness) -> None:
    t, q = harness.transport, harness.q("nowhere")
    with pytest.raises(TransportError):
        t.publish(b"x", queue=q)
    with pytest.raises(TransportError):
        t.consume(q, lambda m: None)


def test_message_headers_round_trip(harness: Harness) -> None:
    t, q = harness.transport, harness.q("headers")
    t.declare_queue(q)
    headers = {"s": "é", "i": 7, "big": 2**40, "neg": -3, "b": True, "n": None,
               "raw": b"\x00\x01", "l": [1, "a"], "d": {"k": "v"}}
    t.publish(b"x", queue=q, headers=headers, persistent=False)
    message = t.get(q)
    assert message is not None and message.headers == headers and message.queue == q
    with pytest.raises(ValueError):
        t.publish(b"x", queue=q, headers={"f": 1.5})


def test_concurrent_publishers_from_several_threads_lose_nothing(harness: Harness) -> None:
    t, q = harness.transport, harness.q("concurrent")
    t.declare_queue(q, max_length=25)
    got: list[bytes] = []
    consumer = t.consume(q, lambda m: got.append(m.body), prefetch=10)
    publishers = [
        threading.Thread(target=lambda n=n: [t.publish(b"%d:%d" % (n, i), queue=q, timeout_s=10) for i in range(50)])
        for n in range(4)
    ]
    for p in publishers:
        p.start()
    for p in publishers:
        p.join()
    wait_until(lambda: len(got) == 200)
    consumer.stop()
    # Then: every message arrived once, and each publisher's messages in its order
    for n in range(4):
        assert [b for b in got if b.startswith(b"%d:" % n)] == [b"%d:%d" % (n, i) for i in range(50)]


def _drain(harness: Harness, queue: str) -> list[bytes]:
    bodies = []
    while (message := harness.transport.get(queue, timeout_s=0.3)) is not None:
        bodies.append(message.body)
    return bodies
