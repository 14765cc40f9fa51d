"""What a load reports: cumulative counts and the rows that failed."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

MAX_TEXT_CHARS = 200
MAX_BYTES_SHOWN = 32
MAX_ERROR_CHARS = 2000


@dataclass
class LoadCounts:
    """Cumulative row counts of one load (see the semantics in :mod:`shared.load`)."""

    rows_inserted: int = 0
    rows_updated: int = 0
    rows_skipped: int = 0
    rows_deleted: int = 0
    rows_failed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, other: "LoadCounts") -> None:
        """Add ``other`` into these counts."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def copy(self) -> "LoadCounts":
        return LoadCounts(**asdict(self))


@dataclass
class FailedRow:
    """One source row the destination refused, with the database's own message.

    ``position`` is 1-based over the whole run (the row's place in the source result);
    ``values`` maps destination column names to the values, long text truncated and
    binary shown as a hex prefix; ``at`` is UTC.
    """

    position: int
    values: dict[str, Any]
    error: str
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "values": self.values, "error": self.error, "at": self.at}


def summarize_value(value: Any) -> Any:
    """A value fit for an error report: long text truncated, bytes as a hex prefix."""
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        return f"{value[:MAX_TEXT_CHARS]}… ({len(value)} chars)"
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        more = f"… ({len(data)} bytes)" if len(data) > MAX_BYTES_SHOWN else ""
        return "0x" + data[:MAX_BYTES_SHOWN].hex() + more
    return value


def failed_row(position: int, names: list[str], row: tuple, error: str) -> FailedRow:
    """A :class:`FailedRow` with summarised values and a bounded error message."""
    values = {name: summarize_value(v) for name, v in zip(names, row)}
    return FailedRow(position, values, error[:MAX_ERROR_CHARS] or "unknown error")
