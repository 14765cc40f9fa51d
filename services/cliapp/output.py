"""Plain-text tables and number formats for the terminal."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

MAX_CELL = 60


def cell(value: Any, *, width: int = MAX_CELL) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces; long cells are shortened."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def count(n: Any) -> str:
    return f"{int(n or 0):,}"


def rate(value: Any) -> str:
    return "" if value is None else f"{float(value):,.0f}"


def when(value: str | None) -> str:
    """An API timestamp as 'YYYY-MM-DD HH:MM:SS' (UTC, as the API gives it)."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h " if hours else "") + f"{minutes}m {secs}s"
