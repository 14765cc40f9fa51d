"""Value guards every destination shares: a value that cannot be written exactly fails its row.

Engines change some values silently: PostgreSQL and MariaDB round a decimal to the
column's scale (MariaDB with only a Note), PostgreSQL's ``time`` and MariaDB's ``TIME``
drop a UTC offset, SQLite stores PostgreSQL's ``infinity`` as a word in a date column.
:func:`guarded_encoder` wraps a dialect's row encoder with the checks its columns need
(only those columns pay) and names the column in every message.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from shared.dialects.loading import kind_of
from shared.dialects.postgresql_values import TEMPORAL_TYPES
from shared.types import Column

ROUNDING_HINT = "set allow_rounding: true on the job's destination to accept rounded values"


def decimal_of(value: Any) -> Decimal | None:
    """The exact decimal a value is written as (a float by its shortest text), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None
    return None


def decimal_places(d: Decimal) -> int:
    """Fractional digits that are not trailing zeros (from the digits; no context rounding)."""
    _sign, digits, exponent = d.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return 0
    places = -exponent
    i = len(digits) - 1
    while places and i >= 0 and digits[i] == 0:
        places -= 1
        i -= 1
    return places


def _rounding_check(name: str, scale: int, type_text: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        d = decimal_of(value)
        if d is not None and decimal_places(d) > scale:
            raise ValueError(f"column {name}: {value} has more than {scale} decimal places and {type_text} would "
                             f"round it; {ROUNDING_HINT}")
    return check


def _offset_check(name: str, type_text: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, time) and value.utcoffset() is not None:
            raise ValueError(f"column {name}: the time {value.isoformat()} has a UTC offset that {type_text} "
                             "would drop; write it into a time-zone-aware or a text column")
    return check


def _special_check(name: str, source_type: str, kind: str, engine: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, str):
            raise ValueError(f"column {name}: {engine} cannot hold the {source_type} value {value!r} (the source's "
                             f"own text, e.g. PostgreSQL's infinity) in a {kind} column")
    return check


def column_checks(target: sa.Column, source: Column, *, engine: str, allow_rounding: bool,
                  enforces_scale: bool, holds_special_text: bool) -> list[Callable[[Any], None]]:
    """The checks one column's values need (empty for most columns)."""
    kind, type_text = kind_of(target.type), f"{engine} {str(target.type).lower()}"
    checks = []
    scale = getattr(target.type, "scale", None)
    if kind == "decimal" and enforces_scale and scale is not None and not allow_rounding:
        checks.append(_rounding_check(target.name, scale, type_text))
    if kind == "int" and enforces_scale and source.type not in ("smallint", "int", "bigint", "bool") \
            and not allow_rounding:
        checks.append(_rounding_check(target.name, 0, type_text))
    if kind == "time" and not getattr(target.type, "timezone", False):
        checks.append(_offset_check(target.name, type_text))
    if source.type in TEMPORAL_TYPES and kind not in ("text", "json", "other") and not holds_special_text:
        checks.append(_special_check(target.name, source.type, kind, engine))
    return checks


def guarded_encoder(encode: Callable[[tuple], Any], targets: list[sa.Column], sources: list[Column], *,
                    engine: str, allow_rounding: bool, enforces_scale: bool = True,
                    holds_special_text: bool = False) -> Callable[[tuple], Any]:
    """``encode`` preceded by the columns' checks; any ValueError names its column."""
    checks = [(i, c) for i, (t, s) in enumerate(zip(targets, sources))
              for c in column_checks(t, s, engine=engine, allow_rounding=allow_rounding,
                                     enforces_scale=enforces_scale, holds_special_text=holds_special_text)]
    names = [t.name for t in targets]

    def guarded(row: tuple) -> Any:
        for i, check in checks:
            if row[i] is not None:
                check(row[i])
        try:
            return encode(row)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _named(exc, names, row, encode) from None
    return guarded


def _named(exc: Exception, names: list[str], row: tuple, encode: Callable[[tuple], Any]) -> Exception:
    """``exc`` with the column whose value failed (found by encoding the row one value at a time)."""
    text = str(exc) or type(exc).__name__
    if text.startswith("column "):
        return exc
    for i, name in enumerate(names):
        if row[i] is None:
            continue
        probe = tuple(v if j == i else None for j, v in enumerate(row))
        try:
            encode(probe)
        except (ValueError, TypeError, OverflowError):
            return ValueError(f"column {name}: {text}")
    return exc


def rounding_risk(source: Column, target: sa.Column) -> bool:
    """Whether a bulk-text value of ``source`` could be rounded to ``target``'s scale by the engine."""
    scale = getattr(target.type, "scale", None)
    if kind_of(target.type) != "decimal" or scale is None:
        return False
    if source.type in ("smallint", "int", "bigint", "bool"):
        return False
    if source.type == "decimal" and source.precision:
        return (source.scale or 0) > scale
    return True
