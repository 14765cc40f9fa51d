"""Rows ↔ Arrow record batches ↔ DuckDB types, keeping each portable type intact.

Into DuckDB: each portable column becomes an Arrow type DuckDB reads natively (decimals
as ``decimal128(p, s)``, timestamps as microseconds, ``timestamptz`` as UTC instants),
and the few Arrow lacks (uuid, json) are cast in the view DuckDB reads. Out of DuckDB:
the result's DuckDB types map back to portable columns, values back to the Python types
the loader takes. A decimal without a declared precision (PostgreSQL ``numeric``, a
``SUM``) takes DuckDB's widest decimal with the scale its first batch needs
(:func:`settle_decimals`); a later value that needs more digits fails its column by name
instead of being rounded. Known limits (README): decimals wider than 38 digits, and
``timetz``, pass through the transform as text (their digits and offsets intact).
"""
from __future__ import annotations

import json
import uuid
from decimal import Decimal
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pyarrow as pa

from shared.transform.plan import TransformError
from shared.types import Column

MAX_DECIMAL_DIGITS = 38

_SIMPLE: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "smallint": pa.int16(), "int": pa.int32(), "bigint": pa.int64(), "float": pa.float64(),
    "bytes": pa.binary(), "date": pa.date32(), "time": pa.time64("us"), "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"), "interval": pa.duration("us"),
}
_CASTS = {"uuid": "UUID", "json": "JSON"}  # carried as text, typed in the view
_FROM_DUCKDB = {
    "BOOLEAN": "bool", "TINYINT": "smallint", "SMALLINT": "smallint", "UTINYINT": "smallint", "INTEGER": "int",
    "USMALLINT": "int", "BIGINT": "bigint", "UINTEGER": "bigint", "FLOAT": "float", "DOUBLE": "float",
    "VARCHAR": "text", "BLOB": "bytes", "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz", "UUID": "uuid", "JSON": "json", "INTERVAL": "interval",
}
_WIDE_INTEGERS = {"UBIGINT": 20, "HUGEINT": 38, "UHUGEINT": 38}


def arrow_type(col: Column) -> pa.DataType:
    """The Arrow type a portable column travels as into DuckDB."""
    if col.type == "decimal" and col.precision and col.precision <= MAX_DECIMAL_DIGITS:
        return pa.decimal128(col.precision, col.scale or 0)
    return _SIMPLE.get(col.type, pa.string())


def settle_decimals(columns: list[Column], rows: list[tuple]) -> list[Column]:
    """Columns where each decimal without a usable precision gets ``decimal(38, s)``, ``s`` being the most
    digits after the point among ``rows`` (a first batch); left as they are when 38 digits cannot hold them."""
    out = []
    for i, col in enumerate(columns):
        if col.type != "decimal" or (col.precision and col.precision <= MAX_DECIMAL_DIGITS):
            out.append(col)
            continue
        scale, whole = 0, 1
        for row in rows:
            value = row[i]
            if isinstance(value, Decimal) and value.is_finite():
                sign, digits, exponent = value.as_tuple()
                scale = max(scale, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
                whole = max(whole, len(digits) + (exponent if isinstance(exponent, int) else 0))
        fits = scale + whole <= MAX_DECIMAL_DIGITS and (col.scale is None or col.scale <= MAX_DECIMAL_DIGITS)
        out.append(Column(col.name, "decimal", col.nullable, col.length, MAX_DECIMAL_DIGITS, scale) if fits else col)
    return out


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(f"c{i}", arrow_type(c)) for i, c in enumerate(columns)])


def view_select(columns: list[Column], source: str, *, probe: bool = False) -> str:
    """``SELECT c0 AS "name", …`` from ``source``: names restored, uuid/json typed. ``probe`` (validation,
    no rows): a column whose type the source could not tell without rows is an untyped NULL, which
    binds wherever any type would."""
    items = []
    for i, c in enumerate(columns):
        cast = _CASTS.get(c.type)
        expr = "NULL" if probe and c.type == "unknown" else f"CAST(c{i} AS {cast})" if cast else f"c{i}"
        items.append(f'{expr} AS "{c.name.replace(chr(34), chr(34) * 2)}"')
    return f"SELECT {', '.join(items)} FROM {source}"


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _prepare(col: Column, values: list[Any], atype: pa.DataType) -> list[Any]:
    if pa.types.is_string(atype):
        return [_as_text(v) for v in values]
    if pa.types.is_binary(atype):
        return [bytes(v) if isinstance(v, (memoryview, bytearray)) else v for v in values]
    return values


def to_batch(rows: list[tuple], columns: list[Column], schema: pa.Schema) -> pa.RecordBatch:
    """One batch of rows as Arrow. Raises TransformError naming a column whose values Arrow refuses."""
    arrays = []
    for i, (col, fld) in enumerate(zip(columns, schema)):
        values = _prepare(col, [r[i] for r in rows], fld.type)
        try:
            arrays.append(pa.array(values, type=fld.type))
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            hint = (f"; a decimal without a declared precision takes the scale of its first rows ({fld.type}): "
                    f"declare it in the step, e.g. CAST({col.name} AS numeric(30,10))"
                    if col.type == "decimal" and pa.types.is_decimal(fld.type) else "")
            raise TransformError(f"column {col.name!r} ({col.type}) cannot be read: {exc}{hint}") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def reader(batches: Iterator[list[tuple]], columns: list[Column]) -> pa.RecordBatchReader:
    """A lazy Arrow reader over row batches: DuckDB pulls one batch at a time."""
    schema = arrow_schema(columns)
    return pa.RecordBatchReader.from_batches(schema, (to_batch(rows, columns, schema) for rows in batches if rows))


def column_of(name: str, duck_type: Any) -> Column:
    """The portable column for a DuckDB result column."""
    text = str(duck_type)
    if text.startswith("DECIMAL("):
        precision, scale = (int(x) for x in text[8:-1].split(","))
        return Column(name=name, type="decimal", precision=precision, scale=scale)
    if text in _WIDE_INTEGERS:
        return Column(name=name, type="decimal", precision=_WIDE_INTEGERS[text], scale=0)
    if text == '"NULL"' or text == "NULL":
        return Column(name=name, type="unknown")
    if text.startswith("TIMESTAMP_") or text == "TIMESTAMP":
        return Column(name=name, type="timestamp")
    return Column(name=name, type=_FROM_DUCKDB.get(text, "text"))


def final_select(names: list[str], types: list[Any]) -> list[str]:
    """Expressions for the transform's output: types with no portable twin become text."""
    out = []
    for name, duck_type in zip(names, types):
        quoted = '"' + name.replace('"', '""') + '"'
        known = column_of(name, duck_type).type != "text" or str(duck_type) == "VARCHAR"
        nanos = str(duck_type) == "TIMESTAMP_NS"
        out.append(f"CAST({quoted} AS TIMESTAMP)" if nanos else quoted if known else f"CAST({quoted} AS VARCHAR)")
    return out


def _interval(v: Any) -> Any:
    if v is None:
        return None
    return timedelta(days=v.months * 30 + v.days, microseconds=v.nanoseconds // 1000)


def _uuid(v: Any) -> Any:
    return None if v is None else uuid.UUID(str(v))


_OUT: dict[str, Callable[[Any], Any]] = {"interval": _interval, "uuid": _uuid}


def rows_of(batch: pa.RecordBatch, columns: list[Column]) -> list[tuple]:
    """Python rows from an Arrow batch of the transform's result."""
    lists = []
    for array, col in zip(batch.columns, columns):
        values = array.to_pylist()
        convert = _OUT.get(col.type)
        lists.append([convert(v) for v in values] if convert else values)
    return list(zip(*lists))
