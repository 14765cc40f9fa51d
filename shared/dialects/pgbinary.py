"""PostgreSQL → PostgreSQL in binary COPY form: the pass-through fast path.

Where both ends are PostgreSQL the extractor can run ``COPY (query) TO STDOUT (FORMAT binary)``
and the loader ``COPY table FROM STDIN (FORMAT binary)`` with the rows as they came: no text is
rendered or parsed on either side. A batch payload holds whole binary rows (the stream's
19-byte header and its ``-1`` trailer are removed by the extractor; the loader puts them back
around each batch: :func:`framed`). The format name carries the source columns' types,
``pg_binary:<oid>.<typmod>,…``, so the loader can check them on its own.

Same values: the binary form of a value is read by the destination type's receive function,
so the path is taken only where that gives exactly what the general path writes
(:func:`carries`): every column's source type is one of :data:`PASS_THROUGH` (built-in types
whose binary form holds no database-specific OID: not arrays, enums, domains, composites) and
is the destination column's own type (same OID); numeric, varchar and char also need the same
typmod; time, timestamp and interval (whose source typmod the driver does not report) need a
destination without a precision (nothing is rounded). Where this holds, the binary path and the
bulk-text path give the same internal value (receive and input functions apply the same typmod
rules), and the loader also requires what the bulk-text path requires (``same_text``, no
rounding risk). Anything else takes the text path.

A batch the destination refuses is decoded back into the rows the general path would have read
from the source (:func:`decode`: COPY into an unconstrained temporary table of the source types,
read back with the source session's conversions and settings) and written the general way.
"""
from __future__ import annotations

import io
import struct
from typing import Any

import sqlalchemy as sa

PREFIX = "pg_binary:"
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00\x00\x00\x00\x00"  # flags 0, no header extension
TRAILER = b"\xff\xff"
PASS_THROUGH = {  # OID: type
    16: "bool", 21: "int2", 23: "int4", 20: "int8", 700: "float4", 701: "float8", 1700: "numeric",
    25: "text", 1043: "varchar", 1042: "bpchar", 17: "bytea", 1082: "date", 1083: "time", 1266: "timetz",
    1114: "timestamp", 1184: "timestamptz", 1186: "interval", 2950: "uuid", 114: "json", 3802: "jsonb",
    869: "inet", 650: "cidr", 829: "macaddr",
}
SAME_TYPMOD = {1700, 1043, 1042}  # the driver reports the source typmod: it must be the destination's
NO_TYPMOD = {1083, 1266, 1114, 1184, 1186}  # it does not: the destination must have none
_VARHDRSZ = 4


def is_binary(fmt: str | None) -> bool:
    return bool(fmt) and fmt.startswith(PREFIX)  # type: ignore[union-attr]


def format_for(types: list[tuple[int, int]]) -> str:
    return PREFIX + ",".join(f"{oid}.{typmod}" for oid, typmod in types)


def types_of(fmt: str) -> list[tuple[int, int]]:
    """The source types a ``pg_binary:`` format names; ValueError when it is not one."""
    if not is_binary(fmt):
        raise ValueError(f"not a binary COPY format: {fmt!r}")
    try:
        return [(int(o), int(m)) for o, _, m in (t.partition(".") for t in fmt[len(PREFIX):].split(","))]
    except ValueError:
        raise ValueError(f"malformed binary COPY format {fmt!r}") from None


def source_types(description: Any) -> list[tuple[int, int]]:
    """(OID, typmod) of each column of a psycopg2 cursor description; typmod -1 where unknown."""
    types = []
    for d in description:
        typmod = -1
        if d.type_code == 1700 and d.precision is not None and d.precision != 0xFFFF:
            typmod = ((d.precision << 16) | (d.scale or 0)) + _VARHDRSZ
        elif d.type_code in (1043, 1042) and d.internal_size is not None and d.internal_size >= 0:
            typmod = d.internal_size + _VARHDRSZ
        types.append((d.type_code, typmod))
    return types


def carries(source: list[tuple[int, int]], dest: list[tuple[int, int] | None]) -> bool:
    """Whether every source value reaches the destination column exactly (module docstring)."""
    if len(source) != len(dest) or not source:
        return False
    for (oid, typmod), target in zip(source, dest):
        if target is None or oid not in PASS_THROUGH or target[0] != oid:
            return False
        if (oid in SAME_TYPMOD and target[1] != typmod) or (oid in NO_TYPMOD and target[1] != -1):
            return False
    return True


_TYPES_SQL = ("SELECT attname, atttypid::int, atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%s) "
              "AND attnum > 0 AND NOT attisdropped")


def table_types(dbapi_conn: Any, table: str) -> dict[str, tuple[int, int]]:
    """Column name → (OID, typmod) of ``table`` (a name as ``to_regclass`` reads it; empty if none)."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute(_TYPES_SQL, (table,))
        return {name: (oid, typmod) for name, oid, typmod in cur.fetchall()}
    finally:
        cur.close()


def by_lower_name(types: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int] | None]:
    """The same, keyed case-insensitively (None where two columns differ only by case)."""
    out: dict[str, tuple[int, int] | None] = {}
    for name, t in types.items():
        out[name.lower()] = None if name.lower() in out else t
    return out


def header_length(first: bytes) -> int:
    """Length of the binary COPY header at the start of ``first``; ValueError when it is not one."""
    if not first.startswith(SIGNATURE) or len(first) < 19:
        raise ValueError("the binary COPY stream does not start with its signature")
    (extension,) = struct.unpack_from("!I", first, 15)
    return 19 + extension


def framed(payload: bytes) -> bytes:
    """A batch's rows as a complete binary COPY stream."""
    return b"".join(framing(payload))


def framing(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """The pieces of that stream in order, the rows not copied (for ``copy_payload``)."""
    return HEADER, payload, TRAILER


def decode(conn: sa.Connection, payload: bytes, fmt: str, rows: int) -> list[tuple]:
    """The batch as the rows the general path reads from the source: COPY into an unconstrained
    temporary table of the source types, read back with the source session's conversions and
    output settings, all inside a savepoint rolled back afterwards (the table and the settings go
    with it). Raises ValueError when the payload does not hold ``rows`` rows."""
    from shared.dialects.postgresql_values import SOURCE_SETTINGS, register_source_casters

    types = types_of(fmt)
    raw = conn.connection.dbapi_connection
    savepoint = conn.begin_nested()
    cur = raw.cursor()
    try:
        cur.execute("SELECT format_type(t, m) FROM unnest(%s::oid[], %s::int[]) WITH ORDINALITY u(t, m, i) "
                    "ORDER BY i", ([t for t, _ in types], [m for _, m in types]))
        names = [f"c{i}" for i in range(len(types))]
        columns = ", ".join(f"{n} {t}" for n, (t,) in zip(names, cur.fetchall()))
        cur.execute(SOURCE_SETTINGS.replace("SET ", "SET LOCAL "))
        cur.execute(f"CREATE TEMPORARY TABLE dm_binary_decode (dm_ord bigint GENERATED ALWAYS AS IDENTITY, {columns})")
        cur.copy_expert(f"COPY dm_binary_decode ({', '.join(names)}) FROM STDIN (FORMAT binary)",
                        io.BytesIO(framed(payload)))
        register_source_casters(cur)
        cur.execute(f"SELECT {', '.join(names)} FROM dm_binary_decode ORDER BY dm_ord")
        decoded = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cur.fetchall()]
    finally:
        cur.close()
        savepoint.rollback()
    if len(decoded) != rows:
        raise ValueError(f"malformed binary COPY payload: {len(decoded)} rows, not {rows}")
    return decoded
