"""SQLite LOADING helpers: sqlite3 value encoding and the mode statements (pure builders)."""
from __future__ import annotations

import sqlite3
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from shared.dialects.loading import changed_condition, json_text, kind_of, to_utc_naive

INT64 = (-(2**63), 2**63 - 1)
EXACT_REAL_DIGITS = 15
_EPOCH = datetime(1970, 1, 1)
_NUMERIC_KINDS = ("int", "decimal", "float")
_ROW_HINTS = ("binding parameter", "too big", "mismatch", "constraint")


def _sqlite_int(value: int) -> int:
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"integer {value} is outside SQLite's 64-bit range")
    return value


def _sqlite_decimal(kind: str, value: Decimal) -> Any:
    """Exact in a NUMERIC/INTEGER column only up to 15 significant digits (stored as REAL) or int64."""
    if not value.is_finite():
        raise ValueError(f"SQLite cannot store the decimal {value}")
    if kind not in _NUMERIC_KINDS:
        return str(value)
    if value == value.to_integral_value() and INT64[0] <= int(value) <= INT64[1]:
        return int(value)
    if significant_digits(value) <= EXACT_REAL_DIGITS:  # counted on the digits: normalize() rounds to 28
        return str(value)
    raise ValueError(f"SQLite cannot store {value} exactly in a numeric column (more than "
                     f"{EXACT_REAL_DIGITS} significant digits would be rounded); declare the column TEXT")


def significant_digits(value: Decimal) -> int:
    """Digits of ``value`` without leading or trailing zeros, exactly (no context precision)."""
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(digits)


def _sqlite_float(value: float) -> float:
    if value != value:
        raise ValueError("SQLite cannot store NaN (it would become NULL)")
    return value


def _sqlite_interval(kind: str, value: timedelta) -> Any:
    if kind == "timestamp":  # SQLAlchemy's Interval on SQLite: epoch + duration
        return (_EPOCH + value).isoformat(" ", timespec="microseconds")
    return value.total_seconds() if kind in _NUMERIC_KINDS else str(value)


def sqlite_converter(kind: str, length: int | None) -> Callable[[Any], Any]:
    """A bindable value for a non-NULL value of a column of ``kind``; raises ValueError when impossible."""
    by_type: dict[type, Callable[[Any], Any]] = {
        bool: int, int: _sqlite_int, float: _sqlite_float, Decimal: lambda v: _sqlite_decimal(kind, v),
        datetime: lambda v: to_utc_naive(v).isoformat(" ", timespec="microseconds"),
        date: date.isoformat, time: lambda v: v.isoformat(timespec="microseconds"),
        uuid.UUID: lambda v: v.bytes if kind == "bytes" else (v.hex if length == 32 else str(v)),
        timedelta: lambda v: _sqlite_interval(kind, v), list: json_text, dict: json_text,
        bytearray: bytes, memoryview: bytes,
    }

    if kind in _NUMERIC_KINDS:  # numeric text would become a REAL: exact or refused, like a Decimal
        by_type[str] = lambda v: _sqlite_numeric_text(kind, v)

    def convert(value: Any) -> Any:
        f = by_type.get(type(value))
        return value if f is None else f(value)
    return convert


def _sqlite_numeric_text(kind: str, value: str) -> Any:
    try:
        number = Decimal(value.strip())
    except ArithmeticError:
        return value  # not a number: SQLite keeps the text
    return _sqlite_decimal(kind, number) if number.is_finite() and value.strip() else value


def sqlite_row_encoder(target_columns: list[sa.Column]) -> Callable[[tuple], tuple]:
    convs = [sqlite_converter(kind_of(c.type), getattr(c.type, "length", None)) for c in target_columns]

    def encode(row: tuple) -> tuple:
        return tuple(None if v is None else f(v) for f, v in zip(convs, row))
    return encode


def build_sqlite_upsert(target: sa.Table, staging: sa.TableClause, columns: list[str], key: list[str]) -> sa.Insert:
    """``INSERT ... SELECT ... WHERE true ON CONFLICT (key) DO UPDATE ... WHERE <changed>``.

    (``WHERE true`` resolves SQLite's parsing ambiguity between a join's ON and ON CONFLICT.)
    """
    select = sa.select(*[staging.c[c] for c in columns]).where(sa.true())
    stmt = sqlite.insert(target).from_select(columns, select)
    updates = [c for c in columns if c not in key]
    return stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in updates},
                                      where=changed_condition(target, stmt.excluded, updates))


def sqlite_is_transient(exc: BaseException) -> bool:
    """BUSY, LOCKED, INTERRUPT: by the result code (:mod:`shared.dialects.classify`)."""
    from shared.dialects.classify import TRANSIENT, classify_sqlite
    return classify_sqlite(getattr(exc, "orig", exc)) == TRANSIENT


def sqlite_is_row_error(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    if isinstance(orig, (sqlite3.IntegrityError, sqlite3.DataError)):
        return True
    return any(h in str(orig).lower() for h in _ROW_HINTS) and not sqlite_is_transient(exc)


def sqlite_key_collations(conn: sa.Connection, target: sa.Table, key: list[str]) -> list[str | None]:
    """The collations of the unique index on ``key`` (CREATE TABLE ... AS SELECT does not copy them)."""
    quote = conn.dialect.identifier_preparer.quote
    schema = f"{quote(target.schema)}." if target.schema else ""
    for index in conn.exec_driver_sql(f"PRAGMA {schema}index_list({quote(target.name)})").all():
        if not index[2]:
            continue
        info = conn.exec_driver_sql(f"PRAGMA {schema}index_xinfo({quote(index[1])})").all()
        collations = {row[2]: row[4] for row in info if row[5]}
        if sorted(collations) == sorted(key):
            return [None if str(collations[k]).upper() == "BINARY" else collations[k] for k in key]
    return [None] * len(key)
