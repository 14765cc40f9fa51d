"""PostgreSQL: both sides (``postgresql_source.py``, ``postgresql_destination.py``) and the core facts."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.dialects.base import Dialect
from shared.dialects.core import Stmt
from shared.dialects.postgresql_destination import PostgresDestination
from shared.dialects.postgresql_source import PostgresSource


class PostgresDialect(PostgresSource, PostgresDestination, Dialect):
    """PostgreSQL."""

    name = "postgresql"
    driver = "postgresql+psycopg2"
    default_port = 5432
    connect_defaults: dict[str, Any] = {"connect_timeout": 10, "application_name": "datamig"}

    def serialise(self, conn: sa.Connection, key: int) -> None:
        """``pg_advisory_xact_lock(key)``."""
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(key)})")

    def lock_rows(self, stmt: Stmt, *, skip_locked: bool = False) -> Stmt:
        """``SELECT … FOR UPDATE`` (``SKIP LOCKED``: rows another transaction holds are left out)."""
        return stmt.with_for_update(skip_locked=skip_locked)
