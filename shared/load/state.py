"""The destination's own record of executions: the ``datamig_state`` table.

A kill can land between a destination's COMMIT and the event that would tell history
about it. So the truth is written where the data is: the load transaction's first
statement inserts the execution's row (state ``loading``) and its last one, just before
COMMIT, marks it ``committed`` with the counts. The row becomes visible exactly when
the rows do, and never without them.

When a worker vanishes, the scheduler :func:`settle`\\ s the execution before failing or
retrying it: it inserts an ``abandoned`` row for the execution, with a short lock
timeout. The destination's unique key decides:

* the insert succeeds: no load transaction of this execution ever committed, and none
  can from now on (a zombie loader's first insert fails): fail and retry safely;
* it waits until the lock timeout: a load transaction of this execution is still open
  (e.g. COMMIT in progress): decide on a later pass;
* it hits the existing row: ``committed`` means the attempt succeeded (its counts are
  there), ``abandoned`` that it was given up before.

The table lives in the destination connection's default schema, is created when missing
(one row per execution; ``watermark`` is reserved for incremental jobs) and may be
created in advance by a DBA whose loader role cannot create tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.errors import DatamigError, DestinationError

STATE_TABLE = "datamig_state"
LOADING, COMMITTED, ABANDONED = "loading", "committed", "abandoned"
COUNT_COLUMNS = ("rows_read", "rows_inserted", "rows_updated", "rows_skipped", "rows_deleted", "rows_failed")
SETTLE_LOCK_TIMEOUT_S = 2.0

STATE = sa.Table(
    STATE_TABLE, sa.MetaData(),
    # execution id + its queue time: unique across metadata stores that share a destination
    # (a reset store, or two installations, reuse execution ids; see execution_key)
    sa.Column("execution_key", sa.String(80), primary_key=True),
    sa.Column("execution_id", sa.BigInteger, nullable=False),
    sa.Column("job_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("committed_at", sa.DateTime),
    *[sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in COUNT_COLUMNS],
    sa.Column("watermark", sa.Text),
    sa.Index("ix_datamig_state_job", "job_id", "committed_at"),
)


class ExecutionFenced(DatamigError):
    """The destination already holds this execution's row: another loader committed it,
    or the scheduler gave it up. This loader must roll back and stay silent."""

    kind = "duplicate"

    def __init__(self, execution_id: int) -> None:
        self.execution_id = execution_id
        super().__init__(f"execution {execution_id} is already recorded in {STATE_TABLE} (committed or given up)")


@dataclass(frozen=True)
class Settled:
    """What the destination says about an execution: ``committed`` (with its counts),
    ``abandoned`` (nothing committed, nothing can commit) or ``in_flight``."""

    outcome: str
    counts: dict[str, int] = field(default_factory=dict)
    watermark: dict = field(default_factory=dict)  # incremental jobs: the committed {value, kind, seen}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


_SEEN_IN: set[str] = set()  # destinations (URL without password) where this process saw the table


def _where(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def ensure_state_table(engine: sa.Engine) -> None:
    """Create ``datamig_state`` when missing (outside any load transaction: DDL commits
    implicitly on MySQL/MariaDB). Raises DestinationError when it is missing and cannot be created.

    Once seen in a destination it is not asked again by this process (a connection and two
    statements per execution); :func:`claim` forgets it when the table has gone."""
    if _where(engine) in _SEEN_IN:
        return
    try:
        with engine.begin() as conn:
            STATE.create(conn, checkfirst=True)
        _SEEN_IN.add(_where(engine))
    except sa.exc.DBAPIError as exc:  # a concurrent creator, or no CREATE privilege
        if sa.inspect(engine).has_table(STATE_TABLE):
            _SEEN_IN.add(_where(engine))
            return
        message = get_dialect(engine.dialect.name).load_error_message(exc)
        raise DestinationError(f"the destination needs the table {STATE_TABLE} (the product's record of "
                               f"executions) and it could not be created: {message}; create it once as a user "
                               f"who may (see the README, 'After a kill') and grant SELECT, INSERT, UPDATE on it") from exc


def execution_key(execution_id: int, queued_at: datetime | None) -> str:
    """The execution's identity in ``datamig_state``: its id and the time it was queued (in UTC,
    to the microsecond), so an id reused by another metadata store never matches."""
    if queued_at is None:
        return str(execution_id)
    if queued_at.tzinfo is not None:
        queued_at = queued_at.astimezone(timezone.utc)
    return f"{execution_id}@{queued_at.strftime('%Y%m%dT%H%M%S.%f')}"


def _row(execution_id: int, job_id: int, state: str, key: str) -> dict:
    return {"execution_key": key or str(execution_id), "execution_id": execution_id, "job_id": job_id,
            "state": state, "updated_at": _now(), **{name: 0 for name in COUNT_COLUMNS}}


def claim(conn: sa.Connection, *, execution_id: int, job_id: int, key: str = "") -> None:
    """The load transaction's first statement. Raises ExecutionFenced when the row exists."""
    try:
        conn.execute(sa.insert(STATE).values(**_row(execution_id, job_id, LOADING, key)))
    except sa.exc.IntegrityError as exc:
        raise ExecutionFenced(execution_id) from exc
    except sa.exc.DBAPIError:
        _SEEN_IN.discard(_where(conn.engine))  # e.g. the table was dropped: the next attempt creates it
        raise


def mark_committed(conn: sa.Connection, *, execution_id: int, counts: dict[str, int], key: str = "",
                   watermark: str | None = None) -> None:
    """The load transaction's last statement before COMMIT: state ``committed``, the counts and,
    for an incremental job, the new watermark (JSON, see shared.incremental.Watermark)."""
    now = _now()
    values = {name: int(counts.get(name, 0)) for name in COUNT_COLUMNS}
    conn.execute(sa.update(STATE).where(STATE.c.execution_key == (key or str(execution_id)))
                 .values(state=COMMITTED, committed_at=now, updated_at=now, watermark=watermark, **values))


def settle(engine: sa.Engine, *, execution_id: int, job_id: int, key: str = "",
           lock_timeout_s: float = SETTLE_LOCK_TIMEOUT_S) -> Settled:
    """Decide an execution whose worker vanished (see the module docstring).

    Raises DestinationError when the destination cannot answer (unreachable, no table).
    """
    dialect = get_dialect(engine.dialect.name)
    try:
        ensure_state_table(engine)
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise DestinationError(f"cannot reach the destination: {dialect.load_error_message(exc)}") from exc
    try:
        return _settle(conn, dialect, execution_id=execution_id, job_id=job_id, key=key or str(execution_id),
                       lock_timeout_s=lock_timeout_s)
    finally:
        conn.close()


def _settle(conn: sa.Connection, dialect: Any, *, execution_id: int, job_id: int, key: str,
            lock_timeout_s: float) -> Settled:
    try:
        with conn.begin():
            dialect.set_lock_timeout(conn, lock_timeout_s)
            conn.execute(sa.insert(STATE).values(**_row(execution_id, job_id, ABANDONED, key)))
        return Settled(ABANDONED)
    except sa.exc.IntegrityError:
        pass  # the row exists: read it below
    except sa.exc.DBAPIError as exc:
        if dialect.is_transient(exc) and not exc.connection_invalidated:
            return Settled("in_flight")  # a load transaction of this execution holds the row
        raise DestinationError(f"cannot write {STATE_TABLE}: {dialect.load_error_message(exc)}") from exc
    try:
        row = conn.execute(sa.select(STATE).where(STATE.c.execution_key == key)).mappings().one()
    except sa.exc.DBAPIError as exc:
        raise DestinationError(f"cannot read {STATE_TABLE}: {dialect.load_error_message(exc)}") from exc
    if row["state"] == COMMITTED:
        return Settled(COMMITTED, {name: int(row[name]) for name in COUNT_COLUMNS}, _watermark(row["watermark"]))
    return Settled(ABANDONED)


def _watermark(text: str | None) -> dict:
    """A committed row's watermark as the finished event carries it (``to``, ``kind``, ``seen``)."""
    from shared.incremental import Watermark

    found = Watermark.from_json(text)
    return {} if found is None else {"to": found.value, "kind": found.kind, "seen": found.seen}
