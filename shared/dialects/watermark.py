"""Engine facts for incremental jobs: binding ``@watermark`` and reading the safe upper bound.

``@watermark`` is never spliced into a step's text. The session gets the value through a bound
parameter of a statement of its own (PostgreSQL: ``set_config('datamig.watermark', %s)``,
MySQL/MariaDB: ``SET @dm_watermark = %s``) and the step's SQL refers to it (a typed
``current_setting(...)`` / the ``@dm_watermark`` variable). The same reference works in a
server-side cursor, a ``COPY`` and a CTE, and the value cannot change the statement's shape.

The bound (see :mod:`shared.incremental`): the source's clock and the start of the oldest
transaction still open, read on a connection of its own just before the read's snapshot.

* PostgreSQL: ``pg_stat_activity`` of the same database (client backends). Other roles'
  sessions show their ``xact_start`` only to a superuser or a member of ``pg_read_all_stats``.
* MySQL/MariaDB: ``information_schema.innodb_trx`` (every InnoDB transaction of the server),
  which needs the ``PROCESS`` privilege.

Without that privilege the answer is marked incomplete (the caller falls back on ``lag`` and
counts a ``watermark_activity_hidden`` warning).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

ENGINES = ("postgresql", "mysql")
# now() is the transaction's start on PostgreSQL, listed as it begins; MySQL/MariaDB's NOW() is the
# statement's start, taken before InnoDB lists the transaction (at its first row access)
PG_MARGIN = timedelta(milliseconds=1)
MYSQL_MARGIN = timedelta(seconds=1)
_PG_TYPES = {"int": "bigint", "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz"}
_PG_BEGINNING = {"int": "-9223372036854775808", "date": "-infinity", "timestamp": "-infinity",
                 "timestamptz": "-infinity"}
_MYSQL_BEGINNING: dict[str, Any] = {"int": -(2**63), "date": date(1, 1, 1), "timestamp": datetime(1, 1, 1),
                                    "timestamptz": datetime(1, 1, 1)}
_PG_HORIZON = """
SELECT statement_timestamp(),
       (SELECT min(xact_start) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'),
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
         OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                         AND backend_type = 'client backend' AND usename IS DISTINCT FROM current_user)
"""
_MYSQL_HORIZON = ("SELECT UTC_TIMESTAMP(6), (SELECT MIN(trx_started) FROM information_schema.innodb_trx "
                  "WHERE trx_mysql_thread_id <> CONNECTION_ID())")


@dataclass(frozen=True)
class Horizon:
    """The source's clock before the read, the oldest open transaction's start (None: none open),
    and whether every session could be seen."""

    clock: datetime
    oldest: datetime | None
    complete: bool
    margin: timedelta = timedelta(0)  # how much earlier a row's time may be than its transaction's listed start


def supports(engine_name: str) -> bool:
    return engine_name in ENGINES


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def reference(engine_name: str, kind: str | None) -> str:
    """What ``@watermark`` becomes in the step's SQL (``kind`` None: NULL, for a describe)."""
    if kind is None:
        return "NULL"
    if engine_name == "postgresql":
        return f"CAST(current_setting('datamig.watermark') AS {_PG_TYPES[kind]})"
    return "@dm_watermark"


def bind(engine_name: str, dbapi_conn: Any, *, kind: str | None, value: Any) -> None:
    """Give the session the value (None: the beginning) through a bound parameter."""
    if kind is None:
        return
    from shared.incremental import format_value

    cur = dbapi_conn.cursor()
    try:
        if engine_name == "postgresql":
            text = _PG_BEGINNING[kind] if value is None else format_value(value)
            cur.execute("SELECT set_config('datamig.watermark', %s, false)", (text,))
        else:
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(timezone.utc).replace(tzinfo=None)  # source sessions run in UTC
            cur.execute("SET @dm_watermark = %s", (_MYSQL_BEGINNING[kind] if value is None else value,))
    finally:
        cur.close()


def horizon(conn: sa.Connection) -> Horizon:
    """Read the bound inputs (on a connection that holds no snapshot of the read)."""
    if conn.dialect.name == "postgresql":
        clock, oldest, complete = conn.exec_driver_sql(_PG_HORIZON).one()
        return Horizon(_utc(clock), _utc(oldest) if oldest else None, bool(complete), PG_MARGIN)
    conn.exec_driver_sql("SET time_zone = '+00:00'")
    try:
        clock, oldest = conn.exec_driver_sql(_MYSQL_HORIZON).one()
    except sa.exc.DBAPIError as exc:  # 1227: no PROCESS privilege
        if getattr(exc.orig, "args", (None,))[0] not in (1227, 1142, 1044):
            raise
        conn.rollback()
        clock = conn.exec_driver_sql("SELECT UTC_TIMESTAMP(6)").scalar_one()
        return Horizon(_utc(clock), None, False, MYSQL_MARGIN)
    return Horizon(_utc(clock), _utc(oldest) if oldest else None, True, MYSQL_MARGIN)


def clock(conn: sa.Connection) -> datetime:
    """The source's clock now (UTC)."""
    sql = "SELECT clock_timestamp()" if conn.dialect.name == "postgresql" else "SELECT UTC_TIMESTAMP(6)"
    return _utc(conn.exec_driver_sql(sql).scalar_one())
