"""Reflect a destination table with only what loading reads: columns, primary key, unique keys.

``sa.Table(..., autoload_with=conn)`` also reflects foreign keys, check constraints and the
table comment, about a dozen catalog queries per table on PostgreSQL; every execution
reflects its destination twice (validation and the load), so on a one-row job this was
about half of execute → completed. The columns are built the way SQLAlchemy's own
reflection builds them (defaults, computed and identity columns, comments).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

NameFix = Callable[[str], str]


def reflect_lean(conn: sa.Connection, name: str, *, schema: str | None, fix_name: NameFix) -> sa.Table:
    """The table ``name`` as loading needs it. Raises NoSuchTableError when it does not exist."""
    inspector = sa.inspect(conn)
    infos = inspector.get_columns(name, schema=schema)
    table = sa.Table(name, sa.MetaData(), schema=schema)
    by_reflected: dict[str, str] = {}
    for info in infos:
        column = _column(info, fix_name)
        by_reflected[info["name"]] = column.name
        table.append_column(column)
    pk = inspector.get_pk_constraint(name, schema=schema)
    if pk.get("constrained_columns"):
        table.append_constraint(sa.PrimaryKeyConstraint(*[by_reflected[c] for c in pk["constrained_columns"]],
                                                        name=pk.get("name")))
    for index in inspector.get_indexes(name, schema=schema):
        names = index.get("column_names") or []
        if index.get("unique") and names and all(n in by_reflected for n in names):  # no expression indexes
            sa.Index(index.get("name"), *[table.c[by_reflected[n]] for n in names], unique=True)
    for unique in inspector.get_unique_constraints(name, schema=schema):
        names = unique.get("column_names") or []
        if names and all(n in by_reflected for n in names):
            table.append_constraint(sa.UniqueConstraint(*[by_reflected[n] for n in names], name=unique.get("name")))
    return table


def _column(info: dict[str, Any], fix_name: NameFix) -> sa.Column:
    args: list[Any] = []
    default = info.get("default")
    if default is not None:
        args.append(default if isinstance(default, sa.schema.FetchedValue)
                    else sa.DefaultClause(default if isinstance(default, sa.TextClause) else sa.text(default)))
    if info.get("computed"):
        args.append(sa.Computed(**info["computed"]))
    if info.get("identity"):
        args.append(sa.Identity(**info["identity"]))
    kwargs = {k: info[k] for k in ("nullable", "autoincrement", "comment") if k in info}
    return sa.Column(fix_name(info["name"]), info["type"], *args, **kwargs)
