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
    is the ``send`` of a generator: entered from C, its state in local variables, a row costs
    a copy into the chunk's buffer, a count and two comparisons (and the row's bytes are freed
    at once, so the next row reuses memory that is still in cache). A binary COPY's trailer is
    not looked for row by row: it is the stream's last write, so it can only be the last row
    of a chunk cut after it, and a row never equals it (it starts with its field count, never -1).
    """

    def __init__(self, put: Callable[[Any], None], chunk_bytes: int, max_rows: int, binary: bool = False) -> None:
        self._put, self._binary = put, binary
        self._rows = self._loop(chunk_bytes, max_rows)
        next(self._rows)
        self.write: Callable[[bytes], None] = self._rows.send

    def _loop(self, limit: int, max_rows: int) -> Generator[None, bytes, None]:
        buf, rows, data = bytearray(), 0, b""
        try:
            data = yield
            if self._binary:  # the header comes with the first row, or alone
                from shared.dialects.pgbinary import header_length

                data = bytes(data)[header_length(data):]
                while not data:
                    data = yield
            while True:
                buf += data
                rows += 1
                if rows >= max_rows or len(buf) >= limit:
                    self._cut(buf, rows, data)
                    rows = 0
                data = yield
        except _EndOfCopy:
            self._cut(buf, rows, data)

    def _cut(self, buf: bytearray, rows: int, last: bytes) -> None:
        """Hand the chunk's ``rows`` rows over (``last``: the row written last) and empty ``buf``."""
        if rows and self._binary and last == _TRAILER:
            del buf[-len(_TRAILER):]
            rows -= 1
        if rows:
            chunk = (bytes(buf), rows)
            buf.clear()
            self._put(chunk)

    def flush(self) -> None:
        """The COPY returned: hand over the last chunk. Call once."""
        try:
            self._rows.throw(_EndOfCopy())
        except StopIteration:
            pass


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
