"""Rows as a CSV byte stream for bulk loaders that read a file (PostgreSQL ``COPY ... FROM STDIN``).

Every non-NULL value is quoted, so an empty string stays distinct from NULL (an
unquoted empty field). Values are turned into text by per-column converters first.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


def _field(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return '"' + text.replace('"', '""') + '"'


class CsvStream:
    """A read-only file object producing CSV lines from batches of rows; counts ``rows``."""

    def __init__(self, batches: Iterable[list[tuple]], convert: list[Callable[[Any], Any] | None]) -> None:
        self._chunks: Iterator[bytes] = self._encode(batches, convert)
        self._buffer = b""
        self._pos = 0
        self.rows = 0

    def _encode(self, batches: Iterable[list[tuple]], convert: list[Callable[[Any], Any] | None]) -> Iterator[bytes]:
        pairs = list(enumerate(convert))
        for batch in batches:
            lines = []
            for row in batch:
                fields = [_field(row[i] if f is None or row[i] is None else f(row[i])) for i, f in pairs]
                lines.append(",".join(fields))
            self.rows += len(batch)
            if lines:
                yield ("\n".join(lines) + "\n").encode("utf-8")

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that remain when ``size`` < 0); ``b""`` at the end."""
        if size < 0:
            rest, self._buffer, self._pos = self._buffer[self._pos:], b"", 0
            return rest + b"".join(self._chunks)
        while len(self._buffer) - self._pos < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer, self._pos = self._buffer[self._pos:] + chunk, 0
        out = self._buffer[self._pos:self._pos + size]
        self._pos += len(out)
        return out
