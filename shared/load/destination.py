"""The destination table checked against the source columns and the mode.

Reflection only: nothing here writes. :func:`check_destination` returns a report for
validation and preview; :func:`resolve_destination` raises ``ValidationFailed`` with it;
:func:`sync_delete_impact` tells how many rows a ``sync_delete`` would delete (reading keys).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.dialects.loading import kind_of
from shared.errors import ValidationFailed
from shared.jobspec import Mode
from shared.load.reflect import reflect_lean
from shared.types import Column

SYNC_IMPACT_CAP = 100_000  # keys read per side by sync_delete_impact; beyond it the impact is not computed
_NUMERIC = {"smallint", "int", "bigint", "float", "decimal", "bool"}
_TEMPORAL = {"date", "time", "timetz", "timestamp", "timestamptz", "interval"}
# (source portable type group, destination kinds it cannot go into)
_INCOMPATIBLE: dict[str, set[str]] = {
    **{t: {"date", "time", "timestamp", "timestamptz", "bytes", "uuid"} for t in _NUMERIC},
    **{t: {"int", "float", "decimal", "bool", "bytes", "uuid"} for t in _TEMPORAL},
    "bytes": {"int", "float", "decimal", "bool", "date", "time", "timestamp", "timestamptz", "json"},
    "uuid": {"int", "float", "decimal", "bool", "date", "time", "timestamp", "timestamptz", "json"},
    "json": {"int", "float", "decimal", "bool", "date", "time", "timestamp", "timestamptz", "bytes", "uuid"},
}


@dataclass
class Destination:
    """A reflected destination: ``columns`` are destination names in source order."""

    table: sa.Table
    columns: list[str]
    key: list[str]


def check_destination(engine: sa.Engine, *, table: str, columns: list[Column], mode: Mode,
                      key_columns: list[str] | None) -> list[dict]:
    """Validation report: a list of ``{"check", "ok", "message"}``. Writes nothing.

    Checks: the table exists; source columns exist in it (case-insensitively) and have
    compatible types; NOT NULL destination columns without default are in the source;
    the mode's key requirement. Raises only for connection errors (SQLAlchemy's).
    """
    with engine.connect() as conn:
        return inspect_destination(conn, table=table, columns=columns, mode=Mode(mode), key_columns=key_columns)[1]


def resolve_destination(conn: sa.Connection, *, table: str, columns: list[Column], mode: Mode,
                        key_columns: list[str] | None) -> Destination:
    """The destination ready to load. Raises ValidationFailed naming the table and columns."""
    dest, report = inspect_destination(conn, table=table, columns=columns, mode=Mode(mode), key_columns=key_columns)
    failed = [r["message"] for r in report if not r["ok"]]
    if failed or dest is None:
        raise ValidationFailed("; ".join(failed), report)
    return dest


def inspect_destination(conn: sa.Connection, *, table: str, columns: list[Column], mode: Mode,
                        key_columns: list[str] | None) -> tuple[Destination | None, list[dict]]:
    """The destination (None when the table is missing) and the validation report."""
    target = reflect_table(conn, table)
    if target is None:
        return None, [_check("table_exists", False, f"destination table {table} does not exist")]
    report = [_check("table_exists", True, f"destination table {table} exists")]
    by_lower = {c.name.lower(): c.name for c in target.columns}
    names = [by_lower.get(c.name.lower(), c.name) for c in columns]
    report.append(_check_columns(table, columns, by_lower))
    report.append(_check_required(table, target, {n.lower() for n in names}, get_dialect(conn).rowid_primary_key))
    report.append(_check_types(table, target, columns, by_lower))
    key, key_check = _resolve_key(table, target, mode, key_columns, {c.name.lower() for c in columns})
    report.append(key_check)
    return Destination(target, names, key), report


def reflect_table(conn: sa.Connection, table: str) -> sa.Table | None:
    """Reflect ``table`` or ``schema.table``; the name matches case-insensitively when not exact."""
    schema, _, name = table.rpartition(".")
    fix_name = get_dialect(conn).reflected_column_name
    try:
        return reflect_lean(conn, name, schema=schema or None, fix_name=fix_name)
    except sa.exc.NoSuchTableError:
        pass
    matches = [t for t in sa.inspect(conn).get_table_names(schema=schema or None) if t.lower() == name.lower()]
    if len(matches) != 1 or matches[0] == name:
        return None
    return reflect_lean(conn, matches[0], schema=schema or None, fix_name=fix_name)


def _check(check: str, ok: bool, message: str) -> dict:
    return {"check": check, "ok": ok, "message": message}


def _check_columns(table: str, columns: list[Column], by_lower: dict[str, str]) -> dict:
    missing = [c.name for c in columns if c.name.lower() not in by_lower]
    lowered = [c.name.lower() for c in columns]
    doubled = sorted({c.name for c in columns if lowered.count(c.name.lower()) > 1})
    if missing:
        return _check("columns_exist", False,
                      f"source columns missing in destination table {table}: {', '.join(missing)}")
    if doubled:
        return _check("columns_exist", False,
                      f"source columns appear more than once (names match case-insensitively): {', '.join(doubled)}")
    return _check("columns_exist", True, f"all {len(columns)} source columns exist in {table}")


def _is_required(col: sa.Column, target: sa.Table, rowid_pk: bool) -> bool:
    """NOT NULL, no default, not generated, not assigned by the engine (identity, serial, rowid)."""
    if col.nullable or col.server_default is not None or col.computed is not None or col.identity is not None:
        return False
    if col.autoincrement is True:
        return False
    is_int_pk = list(target.primary_key.columns) == [col] and isinstance(col.type, sa.Integer)
    return not (rowid_pk and is_int_pk)  # SQLite's INTEGER PRIMARY KEY is the rowid


def _check_required(table: str, target: sa.Table, source: set[str], rowid_pk: bool) -> dict:
    missing = [c.name for c in target.columns if c.name.lower() not in source and _is_required(c, target, rowid_pk)]
    if missing:
        return _check("required_columns", False,
                      f"NOT NULL columns without default of {table} are missing from the source: {', '.join(missing)}")
    return _check("required_columns", True, "every NOT NULL column without default is in the source")


def _check_types(table: str, target: sa.Table, columns: list[Column], by_lower: dict[str, str]) -> dict:
    bad = []
    for col in columns:
        dest_name = by_lower.get(col.name.lower())
        if dest_name is None:
            continue
        kind = kind_of(target.c[dest_name].type)
        if kind in _INCOMPATIBLE.get(col.type, set()):
            bad.append(f"{col.name} ({col.type} into {target.c[dest_name].type})")
    if bad:
        return _check("types_compatible", False, f"incompatible column types for {table}: {', '.join(bad)}")
    return _check("types_compatible", True, "column types are compatible")


def _unique_sets(target: sa.Table) -> list[list[str]]:
    """Column lists of the primary key and of every unique constraint or index."""
    sets = [[c.name for c in target.primary_key.columns]] if target.primary_key.columns else []
    sets += [[c.name for c in ix.columns] for ix in target.indexes if ix.unique]
    sets += [[c.name for c in uc.columns] for uc in target.constraints if isinstance(uc, sa.UniqueConstraint)]
    return sets


def _resolve_key(table: str, target: sa.Table, mode: Mode, key_columns: list[str] | None,
                 source: set[str]) -> tuple[list[str], dict]:
    """The key (destination names) and its check; an empty key when the mode needs none."""
    if key_columns:
        by_lower = {c.name.lower(): c.name for c in target.columns}
        unknown = [k for k in key_columns if k.lower() not in by_lower]
        if unknown:
            return [], _check("key", False, f"key columns not in destination table {table}: {', '.join(unknown)}")
        key = [by_lower[k.lower()] for k in key_columns]
        if not any(sorted(s) == sorted(key) for s in _unique_sets(target)):
            return [], _check("key", False, f"{table} has no primary key or unique index on exactly "
                                            f"({', '.join(key)}); {mode.value} needs one for its key")
    else:
        key = [c.name for c in target.primary_key.columns]
        if not key and mode.needs_key:
            return [], _check("key", False, f"{mode.value} into {table} needs a key: the table has no primary "
                                            "key; give key_columns backed by a unique index")
    absent = [k for k in key if k.lower() not in source]
    if absent and (mode.needs_key or key_columns):
        return [], _check("key", False, f"the source result lacks key column(s) of {table}: {', '.join(absent)}")
    if absent:  # insert_only into a table whose generated PK is not in the source: plain inserts
        return [], _check("key", True, f"no key in the source for {table}: plain inserts")
    return key, _check("key", True, f"key of {table}: ({', '.join(key)})" if key else f"{table} has no key: plain inserts")


def sync_delete_impact(engine: sa.Engine, *, table: str, columns: list[Column], key_columns: list[str] | None,
                       source_keys: Callable[[list[int]], Iterable[tuple]], allow_empty_source: bool = False,
                       max_delete_ratio: float | None = None, cap: int = SYNC_IMPACT_CAP) -> dict | None:
    """How many destination rows a ``sync_delete`` would delete: a check ``{"check", "ok", "message"}``.

    Read-only: ``source_keys(positions)`` yields the key values of the source rows (the
    key columns are at ``positions`` of ``columns``); the destination's keys are read
    with a plain SELECT. The key sets are compared in Python, so each side is read up to
    ``cap`` rows (100,000 by default); past it the check says it was not computed and
    passes (the run's own guards still apply). Values compare as Python values
    (integral decimals as integers, UUIDs as text); text keys compare exactly, so under
    a case- or trailing-blank-insensitive collation the count is an upper bound.

    Not ok when the source is empty and the job does not allow it, or when the share of
    deleted rows would exceed ``max_delete_ratio`` (of the destination rows after the
    upsert, as the loader computes it). None when the destination or its key is not
    usable (the other checks report that).
    """
    name = "sync_delete impact"
    with engine.connect() as conn:
        dest, _ = inspect_destination(conn, table=table, columns=columns, mode=Mode.sync_delete,
                                      key_columns=key_columns)
        if dest is None or not dest.key:
            return None
        positions = [dest.columns.index(k) for k in dest.key]
        dest_keys = _capped(conn.execute(sa.select(*(dest.table.c[k] for k in dest.key)).limit(cap + 1)), cap)
        conn.rollback()
    if dest_keys is None:
        return _check(name, True, f"not computed: {table} holds more than {cap:,} rows")
    src_keys = _capped(source_keys(positions), cap)
    if src_keys is None:
        return _check(name, True, f"not computed: the source returns more than {cap:,} rows")
    doomed = len(dest_keys - src_keys)
    after = len(dest_keys | src_keys)
    summary = f"would delete {doomed} of {len(dest_keys)} destination rows"
    if not src_keys and not allow_empty_source:
        return _check(name, False, f"the source returns no rows: a sync_delete into {table} would stop and delete "
                                   f"nothing ({len(dest_keys)} destination rows); allow an empty source on the job "
                                   "to empty the table")
    if max_delete_ratio is not None and after and doomed / after > max_delete_ratio:
        return _check(name, False, f"{summary} ({doomed / after:.1%} after the upsert), more than the job's cap of "
                                   f"{max_delete_ratio:.1%}: the run would stop and roll back")
    return _check(name, True, summary)


def _key_value(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def _capped(rows: Iterable[Iterable[object]], cap: int) -> set[tuple] | None:
    """The distinct key tuples, or None when there are more than ``cap`` rows."""
    out: set[tuple] = set()
    try:
        for n, row in enumerate(rows, start=1):
            if n > cap:
                return None
            out.add(tuple(_key_value(v) for v in row))
        return out
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # a generator stopped early ends its sessions now
