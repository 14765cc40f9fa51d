"""Source values that only some engines can hold: checked (and spelled) once for every destination.

* MariaDB/MySQL **zero and invalid dates** (``0000-00-00``, ``2021-00-00``, ``2021-02-30``,
  TIMESTAMP 0) travel as their text in a ``date``/``timestamp`` column (the extractor keeps
  them as the server shows them). MariaDB/MySQL destinations store them as they are;
  engines that cannot hold them fail the row, naming the column and the value (the job
  option ``zero_dates: "null"`` maps them to NULL at the source instead, counted as a warning).
* MariaDB/MySQL **TIME** beyond a day or negative (a ``timedelta``) fails a time-of-day column
  with the value as MariaDB shows it; exactly ``24:00:00`` goes into PostgreSQL ``time``.
* **BIT(n)**: MariaDB BIT travels as bytes (``Column.length`` = n bits), PostgreSQL bit/varbit
  as text of 0s and 1s; each side's loader turns the other's form into its own.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from shared.dialects.loading import kind_of
from shared.types import Column

DATE_TYPES = ("date", "timestamp", "timestamptz")
TIME_OF_DAY = "time"
ONE_DAY = timedelta(days=1)
ZERO_DATES_OPTION = "zero_dates"
ZERO_DATES_VALUES = ("keep", "null")
# as MariaDB shows a date or datetime, nothing after it (not 'infinity', '… BC' or an offset)
_DATE_TEXT = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?: \d\d:\d\d:\d\d(?:\.\d{1,6})?)?")


def _mariadb_invalid_date(value: str) -> bool:
    """Whether ``value`` is a zero or invalid date as MariaDB/MySQL shows it ('0000-00-00',
    '2021-02-30'): only those travel as text from a MariaDB date column. A valid calendar date
    in text, or PostgreSQL's own forms ('infinity', '0044-03-15 BC'), is left to the other checks."""
    match = _DATE_TEXT.fullmatch(value)
    if match is None:
        return False
    try:
        date(*(int(g) for g in match.groups()))
    except ValueError:
        return True
    return False


def mysql_time_text(value: timedelta) -> str:
    """A duration as MariaDB/MySQL shows a TIME: ``-01:30:00``, ``838:59:59.500000``."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.days * 86400 + value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    frac = f".{value.microseconds:06d}" if value.microseconds else ""
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}{frac}"


def bit_digits(value: bytes | int, width: int | None, *, column: str, target: str) -> str:
    """BIT bytes (or an int) as ``width`` binary digits; ValueError when the value needs more bits."""
    number = int.from_bytes(value, "big") if isinstance(value, (bytes, bytearray, memoryview)) else int(value)
    if width is None:
        width = max(1, len(value) * 8 if isinstance(value, (bytes, bytearray, memoryview)) else number.bit_length())
    if number < 0 or number.bit_length() > width:
        raise ValueError(f"column {column!r}: the bit value {bin(number)[2:] if number >= 0 else number} "
                         f"needs {number.bit_length()} bits; {target} holds {width}")
    return format(number, f"0{width}b")


def _date_check(column: str, engine: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str) and _mariadb_invalid_date(value):
            raise ValueError(f"column {column!r}: the date {value!r} (a zero or invalid MariaDB/MySQL date) "
                             f"cannot be stored in {engine}; the option zero_dates: \"null\" loads such dates "
                             "as NULL")
        return value
    return check


def _time_check(column: str, engine: str, *, allow_24h: bool) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, timedelta):
            return value
        if allow_24h and value == ONE_DAY:
            return "24:00:00"
        top = "24:00:00" if allow_24h else "23:59:59.999999"
        raise ValueError(f"column {column!r}: the MariaDB/MySQL TIME '{mysql_time_text(value)}' does not fit a "
                         f"{engine} time column, which holds a time of day from 00:00:00 to {top} (a TIME "
                         "beyond a day or negative is a duration: load it into an interval or text column)")
    return check


def with_source_checks(encode: Callable[[tuple], Any], target_columns: list[sa.Column],
                       source_columns: list[Column], *, engine: str, time_24h: bool = False) -> Callable[[tuple], Any]:
    """``encode`` preceded by the checks above, for the columns that need them (others pay nothing).

    For an engine that cannot hold MariaDB zero dates nor a TIME outside a day.
    """
    checks: list[tuple[int, Callable[[Any], Any]]] = []
    for i, (target, source) in enumerate(zip(target_columns, source_columns)):
        kind = kind_of(target.type)
        if source.type in DATE_TYPES:
            checks.append((i, _date_check(target.name, engine)))
        elif source.type == TIME_OF_DAY and kind == TIME_OF_DAY:
            checks.append((i, _time_check(target.name, engine, allow_24h=time_24h)))
    if not checks:
        return encode

    def checked(row: tuple) -> Any:
        values = list(row)
        for i, check in checks:
            if values[i] is not None:
                values[i] = check(values[i])
        return encode(tuple(values))
    return checked


def pg_bit_formatter(target: sa.Column, source: Column) -> Callable[[Any], str] | None:
    """COPY text for a PostgreSQL bit(n)/varbit column (None for other columns): bytes and ints
    (MariaDB BIT) as binary digits, text (PostgreSQL's own form) as it is."""
    from sqlalchemy.dialects.postgresql import BIT

    if not isinstance(target.type, BIT):
        return None
    varying = bool(target.type.varying)
    fixed = None if varying else (target.type.length or 1)
    name = (f"varbit({target.type.length})" if target.type.length else "varbit") if varying else f"bit({fixed})"

    def fmt(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            value = int(value)
        width = fixed or source.length or None
        digits = bit_digits(value, width, column=target.name, target=name)
        if varying and target.type.length and len(digits) > target.type.length:
            digits = bit_digits(value, target.type.length, column=target.name, target=name)
        return digits
    return fmt


def mysql_bit_converter(target: sa.Column) -> Callable[[Any], Any] | None:
    """A driver value for a MariaDB/MySQL BIT(n) column (None for other columns): PostgreSQL's text
    of binary digits as the number it spells (bytes and ints pass as they are)."""
    from sqlalchemy.dialects.mysql import BIT

    if not isinstance(target.type, BIT):
        return None
    width = target.type.length or 1

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            if not value or set(value) - {"0", "1"}:
                raise ValueError(f"column {target.name!r}: {value!r} is not a bit string (0s and 1s)")
            number = int(value, 2)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            number = int.from_bytes(value, "big")
        elif isinstance(value, bool):
            number = int(value)
        else:
            return value
        if number.bit_length() > width:
            raise ValueError(f"column {target.name!r}: the bit value {bin(number)[2:]} needs {number.bit_length()} "
                             f"bits; BIT({width}) holds {width}")
        return number
    return convert


def has_dates(columns: list[Column]) -> bool:
    """Whether a result has date or timestamp columns (where MariaDB zero dates may be)."""
    return any(c.type in DATE_TYPES for c in columns)


def zero_dates_to_null(columns: list[Column], converters: list[Callable[[Any], Any] | None],
                       warnings: dict[str, int]) -> list[Callable[[Any], Any] | None]:
    """The extraction's converters with zero/invalid dates (text in a date column) mapped to NULL,
    each counted in ``warnings["zero_dates"]`` (the opt-in ``zero_dates: "null"``)."""
    def to_null(convert: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
        def mapped(value: Any) -> Any:
            value = value if convert is None else convert(value)
            if isinstance(value, str) and _mariadb_invalid_date(value):
                warnings[ZERO_DATES_OPTION] = warnings.get(ZERO_DATES_OPTION, 0) + 1
                return None
            return value
        return mapped
    return [to_null(f) if c.type in DATE_TYPES else f for c, f in zip(columns, converters)]
