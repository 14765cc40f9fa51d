"""Bulk text formats: rows that travel as the destination's own bulk-load text.

The fast path. When the source engine can render its result in the text the
destination's bulk loader reads, the extractor sends that text as the batch payload
(no Python object per value on either side) and the loader feeds it to ``COPY`` /
``LOAD DATA`` unchanged. Two formats:

* ``pg_text`` — PostgreSQL ``COPY … FROM STDIN`` text format: one line per row,
  tab-separated, ``\\N`` for NULL, backslash escapes. Produced by PostgreSQL
  ``COPY (query) TO STDOUT`` and by MySQL/MariaDB with a ``CONCAT_WS`` wrapper.
* ``mysql_csv`` — for ``LOAD DATA LOCAL INFILE … FIELDS TERMINATED BY ','
  OPTIONALLY ENCLOSED BY '"' ESCAPED BY ''``: every non-NULL value quoted with ``"``
  doubled inside, NULL as the bare word ``NULL``, bytes as hex. Produced by PostgreSQL
  ``COPY … (FORMAT csv, FORCE_QUOTE *, NULL 'NULL')``.

Semantics stay those of the general path (rows of Python values encoded by the
destination dialect): the loader takes the fast path only for the (source type,
destination kind) pairs in :data:`SAME_TEXT`, where the text means the same value to the
destination as the general path's encoding; otherwise, and for any batch the database
refuses, it parses the payload back into the values the general path would have had
(:func:`parse`) and writes them the general way, which isolates bad rows one by one.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from shared.types import Column

PG_TEXT = "pg_text"
MYSQL_CSV = "mysql_csv"
FORMATS = (PG_TEXT, MYSQL_CSV)
BULK_CHUNK_BYTES = 4 * 1024 * 1024
_CSV_FIELD = re.compile(r'(?:"((?:[^"]|"")*)"|NULL)([,\n])', re.S)

_INTS = ("smallint", "int", "bigint")
# format -> source portable type -> destination kinds whose bulk text means the same value
SAME_TEXT: dict[str, dict[str, set[str]]] = {
    PG_TEXT: {
        **{t: {"int", "decimal", "float", "bool"} for t in _INTS},
        "bool": {"bool"}, "float": {"float", "decimal"}, "decimal": {"decimal", "float"},
        "text": {"text", "json", "other"}, "json": {"json", "text", "other"}, "unknown": {"text", "other"},
        "uuid": {"uuid", "text"}, "bytes": {"bytes"}, "date": {"date"}, "time": {"time"},
        "timestamp": {"timestamp", "timestamptz"}, "timestamptz": {"timestamptz"},
    },
    MYSQL_CSV: {
        **{t: {"int", "decimal", "float", "bool"} for t in _INTS},
        "bool": {"int", "bool"}, "float": {"float", "decimal"}, "decimal": {"decimal", "float"},
        "text": {"text", "json"}, "json": {"json", "text"}, "bytes": {"bytes"}, "date": {"date"},
        "time": {"time"}, "timestamp": {"timestamp"}, "timestamptz": {"timestamp"},
    },
}


def same_text(fmt: str, source: list[Column], kinds: list[str]) -> bool:
    """True when every column's bulk text means the same as the general path's value."""
    table = SAME_TEXT.get(fmt, {})
    return all(k in table.get(c.type, ()) for c, k in zip(source, kinds))


# ----------------------------------------------------------------------------- parsing
def _pg_unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out, i, n = [], 0, len(field)
    simple = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
    while i < n:
        c = field[i]
        if c != "\\" or i + 1 == n:
            out.append(c)
            i += 1
            continue
        e = field[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e in "01234567":
            j = i + 1
            while j < min(n, i + 4) and field[j] in "01234567":
                j += 1
            out.append(chr(int(field[i + 1:j], 8)))
            i = j
        elif e == "x" and i + 2 < n and field[i + 2] in "0123456789abcdefABCDEF":
            j = i + 2
            while j < min(n, i + 4) and field[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(field[i + 2:j], 16)))
            i = j
        else:
            out.append(e)
            i += 2
    return "".join(out)


def _pg_bool(text: str) -> Any:
    low = text.lower()
    if low in ("t", "true", "1", "y", "yes", "on"):
        return True
    if low in ("f", "false", "0", "n", "no", "off"):
        return False
    return text


def _pg_bytes(text: str) -> bytes:
    return bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _converter(kind: str, fmt: str) -> Callable[[str], Any] | None:
    """Text of one field → the Python value the general path carries for a source ``kind``."""
    if kind in _INTS:
        return int
    return {
        "bool": _pg_bool, "float": float, "decimal": Decimal, "date": date.fromisoformat,
        "time": time.fromisoformat, "timetz": time.fromisoformat, "timestamp": _timestamp, "timestamptz": _timestamp, "uuid": uuid.UUID,
        "bytes": _pg_bytes if fmt == PG_TEXT else bytes.fromhex,
    }.get(kind)


def _typed(converters: list[Callable[[str], Any] | None]) -> Callable[[list[Any]], tuple]:
    def convert(fields: list[Any]) -> tuple:
        if len(fields) != len(converters):
            raise ValueError(f"malformed bulk payload: a row has {len(fields)} fields, not {len(converters)}")
        out = []
        for value, f in zip(fields, converters):
            if value is not None and f is not None:
                try:
                    value = f(value)
                except (ValueError, ArithmeticError):
                    pass  # kept as text: the destination judges it, as it judges the bulk text
            out.append(value)
        return tuple(out)
    return convert


def _csv_records(text: str) -> list[list[str | None]]:
    """Records of our CSV dialect: ``"…"`` (``""`` inside) or the bare word NULL."""
    records: list[list[str | None]] = []
    record: list[str | None] = []
    pos, end = 0, len(text)
    while pos < end:
        m = _CSV_FIELD.match(text, pos)
        if m is None:
            raise ValueError(f"malformed {MYSQL_CSV} payload at byte {pos}")
        value = m.group(1)
        record.append(None if value is None else value.replace('""', '"'))
        if m.group(2) == "\n":
            records.append(record)
            record = []
        pos = m.end()
    if record:
        raise ValueError(f"malformed {MYSQL_CSV} payload: the last row is not terminated")
    return records


def parse(payload: bytes, fmt: str, columns: list[Column]) -> list[tuple]:
    """A bulk payload back as rows of Python values (the general path's input).

    Raises ValueError for an unknown format or a malformed payload.
    """
    convert = _typed([_converter(c.type, fmt) for c in columns])
    text = payload.decode("utf-8", errors="surrogateescape")
    rows: list[tuple] = []
    if fmt == PG_TEXT:
        for line in text.split("\n")[:-1]:
            fields = [None if f == "\\N" else _pg_unescape(f) for f in line.split("\t")]
            rows.append(convert(fields))
    elif fmt == MYSQL_CSV:
        rows = [convert(r) for r in _csv_records(text)]
    else:
        raise ValueError(f"unknown bulk format {fmt!r}")
    return rows
