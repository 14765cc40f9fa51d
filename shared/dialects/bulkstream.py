"""Chunking a bulk-text export into batch payloads (see :mod:`shared.dialects.bulk`).

PostgreSQL's ``COPY … TO STDOUT`` runs to the end inside one driver call that writes
each row to a file object; :func:`copy_out_chunks` runs it on a helper thread and hands
the rows over in chunks of about ``chunk_bytes`` through a queue of two chunks, so
memory stays flat and a slow consumer slows the COPY down (backpressure). Chunks always
end at a row boundary. :func:`read_ahead` does the same for an export that is read in
chunks already (MariaDB/MySQL), so that the source keeps sending while a chunk is published.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

_DONE = object()
_PUT_WAIT_S = 0.5
_TRAILER = b"\xff\xff"  # a binary COPY's trailer (shared.dialects.pgbinary.TRAILER)


class _Stopped(Exception):
    """The consumer went away: end the COPY."""


class _EndOfCopy(Exception):
    """Thrown into a sink's row loop when the COPY returned: cut the last chunk."""


class _ChunkSink:
    """The file object COPY writes to: one ``write`` per row.

    psycopg2 calls ``write`` once per row (a million calls for a million rows), so ``write``
    is the ``send`` of a generator (:func:`_chunk_rows`): entered from C, its state in local
    variables, a row costs a copy into the chunk's buffer, a count and two comparisons, and the
    row's bytes are freed at once (the next row reuses memory that is still in cache).
    """

    def __init__(self, put: Callable[[Any], None], chunk_bytes: int, max_rows: int, binary: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rows = _chunk_rows(put, chunk_bytes, max_rows, binary, clock)
        next(self._rows)
        self.write: Callable[[bytes], None] = self._rows.send

    def flush(self) -> None:
        """The COPY returned: hand over the last chunk. Call once."""
        try:
            self._rows.throw(_EndOfCopy())
        except StopIteration:
            pass


def _chunk_rows(put: Callable[[Any], None], limit: int, max_rows: int, binary: bool,
                clock: Callable[[], float] = time.monotonic) -> Generator[None, bytes, None]:
    """Receive rows, ``put`` ``(payload, rows)`` chunks ending at the row that reaches ``limit``
    bytes or ``max_rows`` rows, or at a row found (every ``BULK_AGE_CHECK_ROWS`` rows) more than
    ``BULK_MAX_AGE_S`` after the chunk's first row; the rest when :class:`_EndOfCopy` is thrown in.
    The age is looked at only when the row count reaches ``check_at``: per row, the loop still
    costs one count comparison and one size comparison."""
    from shared.dialects.bulk import BULK_AGE_CHECK_ROWS, BULK_MAX_AGE_S

    buf, rows, data = bytearray(), 0, b""
    check_at = min(max_rows, BULK_AGE_CHECK_ROWS)
    try:
        data = yield
        if binary:  # the header comes with the first row, or alone
            from shared.dialects.pgbinary import header_length

            data = bytes(data)[header_length(data):]
            while not data:
                data = yield
        due = clock() + BULK_MAX_AGE_S
        while True:
            buf += data
            rows += 1
            if rows >= check_at or len(buf) >= limit:
                if rows >= max_rows or len(buf) >= limit or clock() >= due:
                    _cut(put, buf, rows, data, binary)
                    rows, due = 0, clock() + BULK_MAX_AGE_S
                check_at = min(max_rows, rows + BULK_AGE_CHECK_ROWS)
            data = yield
    except _EndOfCopy:
        _cut(put, buf, rows, data, binary)


def _cut(put: Callable[[Any], None], buf: bytearray, rows: int, last: bytes, binary: bool) -> None:
    """``put`` the ``rows`` rows in ``buf`` as one chunk (``last``: the row written last) and empty it.

    A binary COPY's trailer is not looked for row by row: it is the stream's last write, so it
    can only be the last row of a chunk, and no row equals it (a row starts with its field
    count, never -1)."""
    if rows and binary and last == _TRAILER:
        del buf[-len(_TRAILER):]
        rows -= 1
    if rows:
        chunk = (bytes(buf), rows)
        buf.clear()
        put(chunk)


def copy_out_chunks(run_copy: Callable[[Any], None], cancel: Callable[[], None], chunk_bytes: int,
                    max_rows: int = 1 << 62, *, binary: bool = False) -> Iterator[tuple[bytes, int]]:
    """``(payload, rows)`` chunks (at most ``chunk_bytes``-ish and ``max_rows``) of what
    ``run_copy(file)`` writes, one row per write (``binary``: a binary COPY's rows, without
    the stream's header and trailer).

    Re-raises the COPY's exception in the consumer; closing the iterator early cancels
    the COPY (``cancel``) and waits for the helper thread.
    """
    def produce(put: Callable[[Any], None]) -> None:
        sink = _ChunkSink(put, chunk_bytes, max_rows, binary)
        run_copy(sink)
        sink.flush()

    return _on_helper_thread(produce, cancel, name="copy-out")


def read_ahead(chunks: Callable[[], Iterator[Any]], cancel: Callable[[], None] = lambda: None) -> Iterator[Any]:
    """The items of ``chunks()`` produced on a helper thread up to two ahead of the consumer,
    so that reading the source overlaps with what the consumer does with each item
    (publishing it). Same contract as :func:`copy_out_chunks`; an early close waits for the
    item being read (``cancel`` may interrupt it)."""
    def produce(put: Callable[[Any], None]) -> None:
        items = chunks()
        try:
            for item in items:
                put(item)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    return _on_helper_thread(produce, cancel, name="read-ahead")


def _on_helper_thread(produce: Callable[[Callable[[Any], None]], None], cancel: Callable[[], None], *,
                      name: str) -> Iterator[Any]:
    """What ``produce(put)`` puts, through a queue of two on a helper thread (backpressure:
    ``put`` blocks while the consumer is behind)."""
    out: "queue.Queue[Any]" = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=_PUT_WAIT_S)
                return
            except queue.Full:
                continue
        raise _Stopped()

    def main() -> None:
        try:
            produce(put)
            put(_DONE)
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            try:
                put(exc)
            except _Stopped:
                pass

    worker = threading.Thread(target=main, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if worker.is_alive():
            try:
                cancel()
            except Exception:  # noqa: BLE001 - best effort; the connection is discarded anyway
                pass
            worker.join(30)
