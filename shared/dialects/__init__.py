"""Dialect registry: :func:`get_dialect` maps an engine name to its :class:`Dialect`."""
from __future__ import annotations

import sqlalchemy as sa

from shared.dialects.base import DestinationSide, Dialect, SourceSide
from shared.jobspec import Engine

_ALIASES = {
    "postgresql": "postgresql", "postgres": "postgresql", "psycopg": "postgresql",
    "mysql": "mysql", "mariadb": "mysql",
    "sqlite": "sqlite",
    "mssql": "mssql", "sqlserver": "mssql",
}


def engine_key(name: str) -> str | None:
    """The engine a backend or driver name means (``postgres``, ``mariadb``, ``mysql+pymysql``…), or None."""
    return _ALIASES.get(name.split("+", 1)[0].strip().lower())


def get_dialect(engine: "str | Engine | sa.Engine | sa.Connection") -> Dialect:
    """The :class:`Dialect` for an engine or SQLAlchemy backend name.

    Accepts :class:`shared.jobspec.Engine`, its values, and SQLAlchemy names such as
    ``postgresql``, ``mysql``, ``mariadb``, ``sqlite``, ``mssql`` (a ``+driver`` suffix
    is ignored), or an SQLAlchemy engine/connection. Raises ValueError for an unknown engine.
    """
    if isinstance(engine, (sa.Engine, sa.Connection)):
        engine = engine.dialect.name
    raw = engine.value if isinstance(engine, Engine) else str(engine)
    key = engine_key(raw)
    if key == "postgresql":
        from shared.dialects.postgresql import PostgresDialect
        return PostgresDialect()
    if key == "mysql":
        from shared.dialects.mysql import MySQLDialect
        return MySQLDialect()
    if key == "sqlite":
        from shared.dialects.sqlite import SQLiteDialect
        return SQLiteDialect()
    if key == "mssql":
        from shared.dialects.mssql import MSSQLDialect
        return MSSQLDialect()
    raise ValueError(f"unknown database engine: {engine!r}")


__all__ = ["DestinationSide", "Dialect", "SourceSide", "engine_key", "get_dialect"]
