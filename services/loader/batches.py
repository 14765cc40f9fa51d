"""Reading an execution's batch queue one batch ahead of the load.

The loader's thread spends most of a batch waiting for the database (COPY, LOAD DATA);
taking the next batch from the broker (a basic_get, MiB of frames through pika) and
decoding it would leave the database idle if done in between. :class:`BatchReader`
does it on a helper thread while the current batch is written: at most one batch is
read ahead (memory stays bounded: the batch being written plus one), in order, and
nothing is read once the end marker arrived.

The helper thread belongs to the loader's thread and lives as long as it (one per
``DM_LOADER_CONCURRENCY`` slot), so its broker connection is opened once, not per
execution.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from shared import messages
from shared.messages import EndOfBatches
from shared.transport.base import Transport

GET_WAIT_S = 0.25  # one read waits this long for a message, so that closing never waits long

_pools = threading.local()


def _pool() -> ThreadPoolExecutor:
    """The calling thread's helper thread (created on first use)."""
    pool = getattr(_pools, "pool", None)
    if pool is None:
        name = f"{threading.current_thread().name}-read"
        pool = _pools.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    return pool


class BatchReader:
    """The messages of one batch queue, decoded, read one ahead on a helper thread."""

    def __init__(self, transport: Transport, queue: str) -> None:
        self._transport, self._queue = transport, queue
        self._pending: Future | None = None

    def _read(self) -> tuple[Any, int] | None:
        message = self._transport.get(self._queue, timeout_s=GET_WAIT_S)
        if message is None:
            return None
        return messages.decode(message.body), len(message.body)

    def next(self, timeout_s: float) -> tuple[Any, int] | None:
        """The next message decoded and its size in bytes, or None when none came within
        ``timeout_s``. Raises what reading or decoding raised (TransportError, DecodeError)."""
        if self._pending is None:
            self._pending = _pool().submit(self._read)
        try:
            found = self._pending.result(timeout=timeout_s)
        except TimeoutError:
            return None
        finally:
            if self._pending.done():
                self._pending = None
        if found is None:
            return None
        if not isinstance(found[0], EndOfBatches):  # read the next one while the caller writes this one
            self._pending = _pool().submit(self._read)
        return found

    def close(self) -> None:
        """Stop reading ahead: waits for a read in progress (at most GET_WAIT_S and one message).
        A message read but not taken is dropped with the queue."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.cancel():
            try:
                pending.result(timeout=30.0)
            except Exception:  # noqa: BLE001 - the execution is over; its queue goes away
                pass
