"""Engine facts for incremental jobs: binding ``@watermark`` and reading the safe upper bound.

``@watermark`` is never spliced into a step's text. The session gets the value through a bound
parameter of a statement of its own (PostgreSQL: ``set_config('datamig.watermark', %s)``,
MySQL/MariaDB: ``SET @dm_watermark = %s``) and the step's SQL refers to it (a typed
``current_setting(...)`` / the ``@dm_watermark`` variable). The same reference works in a
server-side cursor, a ``COPY`` and a CTE, and the value cannot change the statement's shape.

The bound (see :mod:`shared.incremental`), read on a connection of its own just before the read's
snapshot: the earliest time a row that snapshot cannot see may carry. Every input is read after
the clock, so a writer that none of them shows stamps its rows later than the clock.

* PostgreSQL: ``pg_stat_activity`` of the same database (client backends). ``now()`` is the
  transaction's start, the very value the backend publishes as ``xact_start`` when the
  transaction begins (and as ``query_start``, already, when its first statement is announced):
  the oldest of these is exact for every transaction open. ``statement_timestamp()`` and
  ``clock_timestamp()`` defaults are later still. ``PG_MARGIN`` covers the few instructions
  between the backend taking a statement's timestamp and publishing it. Other roles' sessions
  show their times only to a superuser or a member of ``pg_read_all_stats``.
* MySQL/MariaDB: ``NOW()`` is the *statement's* start, and InnoDB lists a transaction
  (``information_schema.innodb_trx``) only when it first touches a row, so a statement may stamp
  rows long before its transaction is listed. Three reads, in this order, close that gap:

  1. the clock and ``information_schema.PROCESSLIST``: every statement running now, with
     ``TIME_MS`` since its start (its ``NOW()``); a statement not running yet starts later;
  2. ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` on this connection: a marker InnoDB lists;
  3. ``innodb_trx``: it is a cache InnoDB refreshes only when nobody read it in the last 0.1 s,
     so it is used only when it lists the marker (filled after step 2), else read again.

  A transaction whose statements all ended before step 1 and that is still open was listed
  before step 1 and still is at step 3. Its later statements stamp rows after its listed
  ``trx_started``; its first statement's rows may be earlier by that statement's time before it
  touched a row, which no server table shows: ``MYSQL_MARGIN`` covers it (and ``trx_started``
  is truncated to the second, which adds up to a second more). Replication threads are left
  out: rows they apply carry the primary's times, which no bound read here covers.
  Both tables need the ``PROCESS`` privilege.

Without that privilege the answer is marked incomplete (the caller falls back on ``lag`` and
counts a ``watermark_activity_hidden`` warning). A time set by the writer itself (the
application's clock, ``SET timestamp``) is outside the rule.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from shared.errors import SourceError

ENGINES = ("postgresql", "mysql")
PG_MARGIN = timedelta(milliseconds=1)  # a backend takes a statement's timestamp, then publishes it
MYSQL_MARGIN = timedelta(seconds=1)  # a transaction's first statement, from its NOW() to its first row
MYSQL_CLOCK_MARGIN = timedelta(milliseconds=1)  # TIME_MS counts on the monotonic clock, NOW() on the wall
STALE_RETRY_S = (0.12, 0.3)  # the pause before reading innodb_trx again (it refreshes after 0.1 s unread)
STALE_BUDGET_S = 15.0  # then the read fails (transient): someone reads innodb_trx without pause
_PG_TYPES = {"int": "bigint", "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz"}
_PG_BEGINNING = {"int": "-9223372036854775808", "date": "-infinity", "timestamp": "-infinity",
                 "timestamptz": "-infinity"}
_MYSQL_BEGINNING: dict[str, Any] = {"int": -(2**63), "date": date(1, 1, 1), "timestamp": datetime(1, 1, 1),
                                    "timestamptz": datetime(1, 1, 1)}
_PG_HORIZON = """
SELECT statement_timestamp(),
       (SELECT min(least(xact_start, CASE WHEN state <> 'idle' THEN query_start END)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'),
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
         OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                         AND backend_type = 'client backend' AND usename IS DISTINCT FROM current_user)
"""
_MYSQL_RUNNING = ("SELECT UTC_TIMESTAMP(6), (SELECT MAX(TIME_MS) FROM information_schema.PROCESSLIST "
                  "WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Sleep', 'Daemon', 'Binlog Dump', "
                  "'Slave_IO', 'Slave_SQL', 'Slave_worker'))")
_MYSQL_OPEN = ("SELECT COALESCE(MAX(trx_mysql_thread_id = CONNECTION_ID()), 0), "
               "MIN(CASE WHEN trx_mysql_thread_id <> CONNECTION_ID() THEN trx_started END) "
               "FROM information_schema.innodb_trx")


@dataclass(frozen=True)
class Horizon:
    """The source's clock before the read, the oldest open transaction's listed start (None: none
    open), whether every session could be seen, and the start of the oldest statement running
    (None: none, or the engine's transaction start covers it)."""

    clock: datetime
    oldest: datetime | None
    complete: bool
    margin: timedelta = timedelta(0)  # how much earlier a row's time may be than its transaction's listed start
    running: datetime | None = None
    clock_margin: timedelta = timedelta(0)

    def inputs(self, *, times: bool) -> tuple[datetime, datetime | None]:
        """(clock, oldest) for the boundary rule. Time columns: the earliest time a row the
        snapshot cannot see may carry (margins applied); integers: the listed starts as read."""
        if not times:
            return self.clock, self.oldest
        starts = [t for t in (self.oldest - self.margin if self.oldest else None, self.running) if t is not None]
        return self.clock - self.clock_margin, min(starts, default=None)


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
    """Read the bound inputs (on a connection that holds no snapshot of the read).

    Raises SourceError (transient) when MariaDB's ``innodb_trx`` stays stale for STALE_BUDGET_S."""
    if conn.dialect.name == "postgresql":
        clock, oldest, complete = conn.exec_driver_sql(_PG_HORIZON).one()
        return Horizon(_utc(clock), _utc(oldest) if oldest else None, bool(complete), PG_MARGIN, None, PG_MARGIN)
    conn.exec_driver_sql("SET time_zone = '+00:00'")
    deadline = time.monotonic() + STALE_BUDGET_S
    while True:
        clock, running_ms = conn.exec_driver_sql(_MYSQL_RUNNING).one()  # 1: before the marker
        try:
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")  # 2: the marker
            fresh, oldest = conn.exec_driver_sql(_MYSQL_OPEN).one()  # 3
        except sa.exc.DBAPIError as exc:  # 1227: no PROCESS privilege
            if getattr(exc.orig, "args", (None,))[0] not in (1227, 1142, 1044):
                raise
            conn.rollback()
            return Horizon(_utc(clock), None, False, MYSQL_MARGIN, None, MYSQL_CLOCK_MARGIN)
        conn.rollback()
        if fresh:
            break
        if time.monotonic() > deadline:
            error = SourceError("information_schema.innodb_trx stayed stale (MariaDB refreshes it only when it "
                                f"was not read for 0.1 s) for {STALE_BUDGET_S:g} s; the watermark cannot be bounded")
            error.transient = True
            raise error
        time.sleep(random.uniform(*STALE_RETRY_S))
    clock = _utc(clock)
    running = clock - _ms(running_ms, clock) if running_ms is not None else None
    return Horizon(clock, _utc(oldest) if oldest else None, True, MYSQL_MARGIN, running, MYSQL_CLOCK_MARGIN)


def _ms(value: Any, clock: datetime) -> timedelta:
    """``TIME_MS`` as a duration, at most back to year 1 (a wrapped counter only holds W back)."""
    limit = clock - datetime(1, 1, 2, tzinfo=timezone.utc)
    try:
        return min(timedelta(milliseconds=float(value)), limit)
    except OverflowError:
        return limit


def clock(conn: sa.Connection) -> datetime:
    """The source's clock now (UTC)."""
    sql = "SELECT clock_timestamp()" if conn.dialect.name == "postgresql" else "SELECT UTC_TIMESTAMP(6)"
    return _utc(conn.exec_driver_sql(sql).scalar_one())
