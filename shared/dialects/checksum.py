"""Row checksums computed by the databases: one canonical text per value, the same on every engine.

``compare`` hashes each row's canonical text where the data lives and only sums come
back. The canonical text of a value (NULL stays NULL; the row framing below tells NULL
from ``''``):

======================  ========================================================================
kind                    canonical text
======================  ========================================================================
bool                    ``1`` / ``0`` (so a boolean equals the integer a MariaDB TINYINT holds)
int                     decimal digits, ``-`` sign
decimal                 normalised: trailing fraction zeros and a bare ``.`` dropped (``1.50`` →
                        ``1.5``, ``2.00`` → ``2``), so a declared scale does not matter
float                   the shortest round-trip text at the column's precision, written as a
                        normalised decimal (no exponent); facing a MariaDB FLOAT (read as its
                        exact double), both sides render the exact double (``float_exact``)
text                    the characters as UTF-8 (MariaDB: ``CONVERT(… USING utf8mb4)``)
bytes                   lower-case hex
date                    ``YYYY-MM-DD``
time                    ``HH:MM:SS.ffffff``
timestamp               ``YYYY-MM-DD HH:MM:SS.ffffff``
timestamptz             the same, in UTC (MariaDB TIMESTAMP: the source session runs in UTC)
uuid, json, others      their text as the engine prints it (JSON: as stored, so key order and
                        spacing count)
======================  ========================================================================

A row's text is its columns' texts, each framed as ``<characters>:<text>`` or ``n`` for
NULL, joined by ``,``; its hash is the first 60 bits (15 hex digits) of MD5 of that text,
and sums are exact (PostgreSQL ``numeric``, MariaDB ``DECIMAL``, SQLite a Python integer).
SQLite has no MD5: :func:`register_sqlite_functions` adds deterministic ``dm_canon``,
``dm_md5`` and the aggregate ``dm_hsum`` to the connection; they run in-process, which is
where SQLite runs anyway. SQL Server is not supported (``ConfigError``).
"""
from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.errors import ConfigError

HASH_HEX = 15  # 60 bits of MD5 per row
_KINDS = {"bool": "bool", "smallint": "int", "int": "int", "bigint": "int", "decimal": "decimal",
          "float": "float", "text": "text", "bytes": "bytes", "date": "date", "time": "time",
          "timestamp": "timestamp", "timestamptz": "timestamptz", "uuid": "uuid", "json": "json"}


def canonical_kind(type_name: str) -> str:
    """The canonical kind of a portable type (``shared.types``) or destination kind (``kind_of``)."""
    return _KINDS.get(type_name, "other")


def single_precision_floats(engine: str, types: list[Any]) -> list[bool]:
    """Per column: a MariaDB/MySQL FLOAT (single precision), given portable columns (``Column``, a
    FLOAT reads with precision 24) or reflected SQLAlchemy types. Its values are read as their exact
    doubles, so the other side renders the column as ``float_exact``."""
    if engine != "mysql":
        return [False] * len(types)
    from sqlalchemy.dialects import mysql

    return [isinstance(t, mysql.FLOAT) or getattr(t, "type", None) == "float" and getattr(t, "precision", None) == 24
            for t in types]


def _pg_value(expr: str, kind: str) -> str:
    if kind == "bool":
        return f"CASE WHEN {expr} THEN '1' WHEN NOT {expr} THEN '0' END"
    if kind == "decimal":
        return f"trim_scale(({expr})::numeric)::text"
    if kind == "float":  # the shortest text at the column's own precision (real: 0.1)
        return f"trim_scale(({expr})::text::numeric)::text"
    if kind == "float_exact":  # a real as its exact double (0.10000000149011612), as MariaDB FLOAT is read
        return f"trim_scale(({expr})::float8::text::numeric)::text"
    if kind == "bytes":
        return f"encode({expr}, 'hex')"
    if kind == "date":
        return f"to_char({expr}, 'YYYY-MM-DD')"
    if kind == "time":
        return f"to_char({expr}, 'HH24:MI:SS.US')"
    if kind == "timestamp":
        return f"to_char({expr}, 'YYYY-MM-DD HH24:MI:SS.US')"
    if kind == "timestamptz":
        return f"to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    return f"({expr})::text"


def _my_trim(s: str) -> str:
    return f"IF(LOCATE('.', {s}) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {s})), {s})"


def _my_float(expr: str) -> str:
    """The shortest text of the double as a plain decimal: MariaDB prints ``1e20`` / ``-3.5e-30``,
    so mantissa digits are shifted by the exponent with string functions (exact at any magnitude)."""
    t = f"CAST(CAST({expr} AS DOUBLE) AS CHAR)"
    sign = f"IF(LEFT({t}, 1) = '-', '-', '')"
    mant = f"TRIM(LEADING '-' FROM SUBSTRING_INDEX({t}, 'e', 1))"
    whole = f"SUBSTRING_INDEX({mant}, '.', 1)"
    digits = f"CONCAT({whole}, IF(LOCATE('.', {mant}) > 0, SUBSTRING_INDEX({mant}, '.', -1), ''))"
    point = f"(CHAR_LENGTH({whole}) + CAST(SUBSTRING_INDEX({t}, 'e', -1) AS SIGNED))"
    plain = (f"CASE WHEN {point} <= 0 THEN CONCAT('0.', REPEAT('0', -{point}), {digits}) "
             f"WHEN {point} >= CHAR_LENGTH({digits}) "
             f"THEN CONCAT({digits}, REPEAT('0', {point} - CHAR_LENGTH({digits}))) "
             f"ELSE CONCAT(LEFT({digits}, {point}), '.', SUBSTRING({digits}, {point} + 1)) END")
    shifted = f"CONCAT({sign}, {_my_trim(plain)})"
    return f"IF({t} IN ('0', '-0'), '0', IF(LOCATE('e', {t}) > 0, {shifted}, {_my_trim(t)}))"


def _my_value(expr: str, kind: str) -> str:
    if kind in ("bool", "int"):
        return f"CAST(({expr}) + 0 AS CHAR)"
    if kind == "decimal":
        return _my_trim(f"CAST({expr} AS CHAR)")
    if kind in ("float", "float_exact"):
        return _my_float(expr)
    if kind == "bytes":
        return f"LOWER(HEX({expr}))"
    if kind == "date":
        return f"DATE_FORMAT({expr}, '%Y-%m-%d')"
    if kind == "time":
        return f"TIME_FORMAT({expr}, '%H:%i:%s.%f')"
    if kind in ("timestamp", "timestamptz"):
        return f"DATE_FORMAT({expr}, '%Y-%m-%d %H:%i:%s.%f')"
    return f"CONVERT({expr} USING utf8mb4)"


class ChecksumSQL:
    """SQL fragments of one engine: canonical value, framed row text, hash, exact sum."""

    def __init__(self, engine: str) -> None:
        if engine not in ("postgresql", "mysql", "sqlite"):
            raise ConfigError(f"compare supports PostgreSQL, MySQL/MariaDB and SQLite, not {engine}")
        self.engine = engine

    def value(self, expr: str, kind: str) -> str:
        """Canonical text of ``expr`` (NULL stays NULL)."""
        if self.engine == "postgresql":
            return _pg_value(expr, kind)
        if self.engine == "mysql":
            return _my_value(expr, kind)
        return f"dm_canon('{kind}', {expr})"

    def row_text(self, exprs: list[str], kinds: list[str]) -> str:
        """The framed text of a row (or of a key): ``len:text`` per value, ``n`` for NULL."""
        parts = []
        for expr, kind in zip(exprs, kinds):
            v = self.value(expr, kind)
            if self.engine == "mysql":
                parts.append(f"COALESCE(CONCAT(CHAR_LENGTH({v}), ':', {v}), 'n')")
            else:
                parts.append(f"COALESCE(length({v}) || ':' || {v}, 'n')")
        if not parts:
            return "''"
        if self.engine == "mysql":
            return f"CONCAT_WS(',', {', '.join(parts)})"
        return " || ',' || ".join(parts)

    def md5(self, expr: str) -> str:
        return f"dm_md5({expr})" if self.engine == "sqlite" else f"MD5({expr})" if self.engine == "mysql" \
            else f"md5({expr})"

    def prefix(self, expr: str, digits: int) -> str:
        return f"substr({expr}, 1, {int(digits)})"

    def hash_sum(self, md5_expr: str) -> str:
        """Exact sum of the 60-bit row hashes (an aggregate)."""
        head = self.prefix(md5_expr, HASH_HEX)
        if self.engine == "postgresql":
            return f"sum(('x' || {head})::bit(60)::bigint)"
        if self.engine == "mysql":
            return f"SUM(CAST(CONV({head}, 16, 10) AS UNSIGNED))"
        return f"dm_hsum({md5_expr})"


def sum_value(value: Any) -> int:
    """A hash sum as a Python integer (numeric, DECIMAL or SQLite's text; NULL for no rows is 0)."""
    return 0 if value is None else int(Decimal(str(value)))


def _decimal_text(d: Decimal) -> str:
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _dt_text(value: Any, kind: str) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if kind != "time" else time.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value.strftime("%H:%M:%S.%f")


def canonical_text(kind: str, value: Any) -> str | None:
    """The canonical text of a Python (SQLite) value; mirrors the SQL of the other engines."""
    if value is None:
        return None
    try:
        if kind in ("bool", "int", "decimal", "float", "float_exact") and not isinstance(value, (bytes, str)) or \
                kind in ("decimal", "float", "float_exact") and isinstance(value, str):
            if isinstance(value, float):
                value = Decimal(repr(value))
            return _decimal_text(Decimal(value))
        if kind == "bytes" or isinstance(value, bytes):
            return bytes(value).hex() if isinstance(value, (bytes, bytearray, memoryview)) else \
                str(value).encode().hex()
        if kind == "date":
            return (date.fromisoformat(value[:10]) if isinstance(value, str) else value).isoformat()
        if kind in ("time", "timestamp", "timestamptz"):
            return _dt_text(value, kind)
    except (InvalidOperation, ValueError, TypeError, AttributeError):
        pass  # not of its declared kind (SQLite is dynamically typed): compared as its text
    return str(value)


class _HashSum:
    def __init__(self) -> None:
        self.total = 0

    def step(self, md5_hex: str | None) -> None:
        if md5_hex is not None:
            self.total += int(md5_hex[:HASH_HEX], 16)

    def finalize(self) -> str:
        return str(self.total)


def prepare_checksum_session(engine: str, dbapi_conn: Any) -> None:
    """After the read-only transaction began: SQLite gets the functions; PostgreSQL prints floats
    shortest-exact whatever the server's ``extra_float_digits`` (for this transaction only)."""
    if engine == "sqlite":
        register_sqlite_functions(dbapi_conn)
    elif engine == "postgresql":
        cur = dbapi_conn.cursor()
        cur.execute("SET LOCAL extra_float_digits = 1")
        cur.close()


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Add ``dm_canon(kind, value)``, ``dm_md5(text)`` and the aggregate ``dm_hsum(md5)`` (read-only)."""
    dbapi_conn.create_function("dm_canon", 2, canonical_text, deterministic=True)
    dbapi_conn.create_function("dm_md5", 1, lambda s: None if s is None else
                               hashlib.md5(str(s).encode()).hexdigest(), deterministic=True)
    dbapi_conn.create_aggregate("dm_hsum", 1, _HashSum)
