"""Engine-neutral pieces of the LOADING side of the dialects.

Pure SQL builders (SQLAlchemy Core, identifiers quoted by the dialect, no values in
the text) and value helpers shared by the engine modules. Engine modules override
only what differs (``postgresql.py``: ``ON CONFLICT``; ``mysql.py``: ``ON DUPLICATE
KEY UPDATE``; ``mssql.py``: ``MERGE``).
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import sqltypes

UTC = timezone.utc


class DuplicateKeysInBatch(Exception):
    """Internal signal: a batch holds one key twice and the engine cannot count it set-wise.

    The loader reacts by splitting the batch, so the duplicates land in different
    statements and apply in source order (the later row wins in upsert).
    """


class BulkRefused(Exception):
    """Internal signal: a bulk-text load did not apply every row cleanly (warnings, a row short).

    The loader rolls the batch back and writes it through the general path, which
    isolates the rows at fault.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def kind_of(sa_type: sa.types.TypeEngine) -> str:
    """The portable kind of a destination column type (``int``, ``text``, ``timestamptz``...)."""
    checks: list[tuple[type, str]] = [
        (sa.Boolean, "bool"), (sa.Integer, "int"), (sa.Float, "float"), (sa.Numeric, "decimal"),
        (sa.Uuid, "uuid"), (sa.JSON, "json"), (sqltypes._AbstractInterval, "interval"),
        (sa.DateTime, "timestamp"), (sa.Date, "date"), (sa.Time, "time"),
        (sqltypes._Binary, "bytes"), (sa.String, "text"),
    ]
    for cls, kind in checks:
        if isinstance(sa_type, cls):
            zoned = getattr(sa_type, "timezone", False) or type(sa_type).__name__ == "DATETIMEOFFSET"
            if kind == "timestamp" and zoned:
                return "timestamptz"
            return kind
    name = type(sa_type).__name__.upper()
    if name in ("JSONB", "JSON"):
        return "json"
    return "other"


def to_utc_naive(value: datetime) -> datetime:
    """An aware datetime as naive UTC; a naive one unchanged (it is taken as UTC)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def json_text(value: Any) -> str:
    """Lists and dicts (arrays, documents) as JSON text. Raises ValueError when not serialisable."""
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot write {type(value).__name__} as JSON: {exc}") from None


def plain_preparer(sa_dialect: sa.Dialect) -> Any:
    """The dialect's identifier preparer for SQL sent WITHOUT parameters (``COPY``, ``LOAD DATA``,
    a raw cursor's ``execute(sql)``): percent signs in names stay single. SQLAlchemy doubles them
    for ``format``/``pyformat`` drivers, which undo it only when parameters are bound."""
    prep = sa_dialect.identifier_preparer
    if not getattr(prep, "_double_percents", False):
        return prep
    plain = copy.copy(prep)
    plain._double_percents = False
    plain._strings = {}
    return plain


def temp_table(name: str, columns: list[str]) -> sa.TableClause:
    """A lightweight table clause (no types needed: values never pass through SQL text)."""
    return sa.table(name, *[sa.column(c) for c in columns])


def key_match(left: sa.FromClause, right: sa.FromClause, key: list[str]) -> sa.ColumnElement[bool]:
    """``left.k1 = right.k1 AND ...``."""
    return sa.and_(*[left.c[k] == right.c[k] for k in key])


def build_staging_select(target: sa.Table, columns: list[str]) -> sa.Select:
    """The empty SELECT whose shape (exact column types, no constraints) a staging table copies."""
    return sa.select(*[target.c[c] for c in columns]).where(sa.false())


def build_insert_new(target: sa.Table, staging: sa.TableClause, columns: list[str],
                     key: list[str]) -> sa.Insert:
    """insert_only with a key: insert staged rows whose key is not yet in the destination."""
    existing = target.alias("dm_existing")
    absent = ~sa.exists().where(key_match(existing, staging, key))
    select = sa.select(*[staging.c[c] for c in columns]).where(absent)
    return sa.insert(target).from_select(columns, select)


def build_batch_stats(target: sa.Table, staging: sa.TableClause, key: list[str]) -> sa.Select:
    """(staged rows, distinct staged keys, staged rows whose key exists in the destination)."""
    distinct_keys = sa.select(*[staging.c[k] for k in key]).distinct().subquery("dm_keys")
    return sa.select(
        sa.select(sa.func.count()).select_from(staging).scalar_subquery(),
        sa.select(sa.func.count()).select_from(distinct_keys).scalar_subquery(),
        sa.select(sa.func.count()).select_from(staging.join(target, key_match(staging, target, key)))
        .scalar_subquery(),
    )


def changed_condition(target: sa.FromClause, source: sa.FromClause | sa.ColumnCollection,
                      columns: list[str]) -> sa.ColumnElement[bool]:
    """True when any of ``columns`` differs, NULL-safely (``IS DISTINCT FROM``).

    ``source`` is a table or a column collection such as an upsert's ``excluded``.
    """
    cols = source.c if isinstance(source, sa.FromClause) else source
    return sa.or_(*[target.c[c].is_distinct_from(cols[c]) for c in columns])


def build_record_seen(seen: sa.TableClause, staging: sa.TableClause, key: list[str]) -> sa.Insert:
    """sync_delete: remember the keys of a staged batch."""
    return sa.insert(seen).from_select(key, sa.select(*[staging.c[k] for k in key]))


def _unseen(target: sa.Table, seen: list[sa.TableClause], key: list[str]) -> sa.ColumnElement[bool]:
    return sa.and_(*[~sa.exists().where(key_match(s, target, key)) for s in seen])


def build_count_missing(target: sa.Table, seen: list[sa.TableClause], key: list[str]) -> sa.Select:
    """(destination rows whose key is in none of the ``seen`` tables, all destination rows)."""
    missing = sa.select(sa.func.count()).select_from(target).where(_unseen(target, seen, key))
    total = sa.select(sa.func.count()).select_from(target)
    return sa.select(missing.scalar_subquery(), total.scalar_subquery())


def build_delete_missing(target: sa.Table, seen: list[sa.TableClause], key: list[str]) -> sa.Delete:
    """sync_delete: delete destination rows whose key was not in the source (anti-joins with
    every table of source keys: the written keys and the keys of rows that failed)."""
    return sa.delete(target).where(_unseen(target, seen, key))


def compile_sql(stmt: sa.ClauseElement, sa_dialect: sa.Dialect) -> str:
    """Statement text for a dialect. Only for statements without values (identifiers only)."""
    return str(stmt.compile(dialect=sa_dialect, compile_kwargs={"literal_binds": True}))


def _key_col(table: sa.FromClause, name: str, collation: str | None) -> sa.ColumnElement:
    column = table.c[name]
    return sa.collate(column, collation) if collation else column


def build_key_check(staging: sa.TableClause, written: sa.TableClause, key: list[str],
                    collations: list[str | None]) -> sa.Select:
    """(staged rows, distinct staged keys, staged rows whose key this execution already wrote).

    Keys compare as the destination compares them: the staging and written-keys tables copy
    its column types and collations (``collations`` adds one where a copy loses it: SQLite).
    """
    keys = [_key_col(staging, k, c) for k, c in zip(key, collations)]
    match = sa.and_(*[s == written.c[k] for s, k in zip(keys, key)])
    distinct = sa.select(*keys).distinct().subquery("dm_keys")
    return sa.select(
        sa.select(sa.func.count()).select_from(staging).scalar_subquery(),
        sa.select(sa.func.count()).select_from(distinct).scalar_subquery(),
        sa.select(sa.func.count()).select_from(staging).where(sa.exists().where(match)).scalar_subquery(),
    )


def build_key_repeat(staging: sa.TableClause, written: sa.TableClause, key: list[str],
                     collations: list[str | None]) -> sa.Select:
    """A staged key and the already written key it matches (for the failed row's message)."""
    keys = [_key_col(staging, k, c) for k, c in zip(key, collations)]
    match = sa.and_(*[s == written.c[k] for s, k in zip(keys, key)])
    return sa.select(*[staging.c[k] for k in key], *[written.c[k] for k in key]).where(match).limit(1)
