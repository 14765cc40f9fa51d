"""Values as JSON every reader and every metadata store accepts (failed rows in the history).

JSON has no NaN or Infinity (PostgreSQL's ``json`` refuses the tokens Python writes for
them, and browsers cannot parse them), no bytes, decimals or dates, and readers in
JavaScript round integers beyond 2**53; PostgreSQL text cannot hold the NUL character.
Whatever JSON cannot hold exactly becomes text that says what the value was.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

MAX_TEXT_CHARS = 1000
MAX_BYTES_SHOWN = 64
EXACT_JSON_INT = 2**53


def safe_text(text: str, *, limit: int | None = MAX_TEXT_CHARS) -> str:
    """``text`` without NUL characters (shown as ``\\x00``), cut at ``limit`` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def json_safe(value: Any) -> Any:
    """A rendering of ``value`` that any JSON parser reads back as the same thing (or as its text)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -EXACT_JSON_INT <= value <= EXACT_JSON_INT else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return "\\x" + raw[:MAX_BYTES_SHOWN].hex() + ("…" if len(raw) > MAX_BYTES_SHOWN else "")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, timedelta)):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {safe_text(str(k), limit=None): json_safe(v) for k, v in value.items()}
    return safe_text(str(value))
