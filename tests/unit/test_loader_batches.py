"""The loader's BatchReader: a batch queue read in order, one message ahead, nothing after the end."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.loader.batches import BatchReader
from shared.errors import DecodeError
from shared.messages import Batch, EndOfBatches
from shared.transport.memory import MemoryTransport


@pytest.fixture
def transport() -> Iterator[MemoryTransport]:
    transport = MemoryTransport()
    transport.declare_queue("batches")
    yield transport
    transport.close()


def _next(reader: BatchReader) -> object:
    found = reader.next(timeout_s=5.0)
    assert found is not None
    return found[0]


def test_batches_come_in_order_and_one_is_read_ahead(transport: MemoryTransport) -> None:
    for seq in (1, 2, 3):
        transport.publish(Batch(execution_id=1, seq=seq, rows=[(seq,)]).encode(), queue="batches")
    reader = BatchReader(transport, "batches")
    try:
        first = _next(reader)
        assert isinstance(first, Batch) and first.seq == 1
        # Then: while the caller writes batch 1, batch 2 is taken from the queue
        reader._pending.result(timeout=5.0)  # noqa: SLF001 - the read ahead
        assert transport.queue_depth("batches")[0] == 1
        assert [_next(reader).seq for _ in range(2)] == [2, 3]  # type: ignore[attr-defined]
    finally:
        reader.close()


def test_nothing_is_read_after_the_end_marker(transport: MemoryTransport) -> None:
    transport.publish(Batch(execution_id=1, seq=1, rows=[(1,)]).encode(), queue="batches")
    transport.publish(EndOfBatches(execution_id=1, seq=2, rows_read=1).encode(), queue="batches")
    transport.publish(b"not read", queue="batches")
    reader = BatchReader(transport, "batches")
    assert isinstance(_next(reader), Batch)
    end = reader.next(timeout_s=5.0)
    assert end is not None and isinstance(end[0], EndOfBatches) and end[1] > 0
    reader.close()
    assert transport.queue_depth("batches")[0] == 1


def test_an_empty_queue_gives_none_and_a_bad_message_raises_in_the_caller(transport: MemoryTransport) -> None:
    reader = BatchReader(transport, "batches")
    try:
        assert reader.next(timeout_s=0.05) is None
        transport.publish(b"\xc1 not msgpack", queue="batches")
        with pytest.raises(DecodeError):
            for _ in range(100):  # the pending read may first time out empty
                reader.next(timeout_s=1.0)
    finally:
        reader.close()
