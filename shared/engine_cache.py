"""Destination and source engines kept by a worker process across executions (PostgreSQL only).

A new PostgreSQL connection costs a fork on the server, authentication and cold catalog caches
(the first reflection on a new backend is about twice as slow as on a used one); a 1-row job
opened six of them. A worker therefore keeps one engine per exact connection URL (host, port,
user, password, database, options: the secret inside it only ever goes to the server it was
saved with; a changed password is another URL, hence another engine) and use (``sqlite_mode``).

What makes reuse safe:
- a connection is reused only after the server reset it: on check-in the pool rolls back and
  we run ``DISCARD ALL`` (settings, ``SET ROLE``, read-only characteristics, temporary tables
  and functions, prepared statements, advisory locks: a new session's state); if that fails
  the connection is closed, never reused;
- sessions that change the driver's own state (a source session registers type casters) or
  were cancelled are closed, not returned (:mod:`shared.extract.session`, :class:`LoadSession`);
- ``pool_pre_ping`` replaces a connection the server dropped while idle;
- nothing about the destination is cached with the engine: every execution validates and
  reflects again on the connection it gets;
- an engine unused for ``IDLE_S`` (none of its connections out, none released since) is disposed,
  its idle connections closed.

Other engines are created per execution with ``NullPool`` and disposed by the caller, as before.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL

from shared.connections import create_db_engine

log = logging.getLogger(__name__)
IDLE_S = 60.0  # an engine (and its idle connections) unused this long is disposed
POOL_SIZE = 2  # idle connections kept per engine; more are opened when needed and closed after use
POOLED_BACKENDS = ("postgresql",)
_CACHED: "weakref.WeakSet[sa.Engine]" = weakref.WeakSet()


def is_cached(engine: sa.Engine) -> bool:
    """Whether ``engine`` belongs to an :class:`EngineCache` (then connections may be returned to it)."""
    return engine in _CACHED


def _reset_on_checkin(dbapi_conn: Any, record: Any) -> None:
    """Return a connection to the pool only as a fresh session (``DISCARD ALL``), else close it."""
    if dbapi_conn is None:
        return
    try:
        dbapi_conn.rollback()
        dbapi_conn.autocommit = True  # DISCARD ALL refuses to run inside a transaction block
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute("DISCARD ALL")
                if not (dbapi_conn.get_parameter_status("DateStyle") or "ISO").startswith("ISO"):
                    cur.execute("SET DATESTYLE TO 'ISO'")  # what psycopg2 does on connect: it parses ISO only
        finally:
            dbapi_conn.autocommit = False
    except Exception:  # noqa: BLE001 - a connection we cannot reset is not reused
        log.debug("closing a pooled connection that could not be reset", exc_info=True)
        record.invalidate()


class EngineCache:
    """Engines per (connection URL, use); thread-safe; :meth:`close` disposes them all."""

    def __init__(self, *, idle_s: float = IDLE_S, pool_size: int = POOL_SIZE) -> None:
        self._idle_s, self._pool_size = idle_s, pool_size
        self._engines: dict[str, tuple[sa.Engine, float]] = {}
        self._lock = threading.Lock()

    def engine(self, url: URL, *, sqlite_mode: str) -> sa.Engine:
        """The engine for ``url``: kept (PostgreSQL) or new with NullPool (release it with :meth:`release`)."""
        if url.get_backend_name() not in POOLED_BACKENDS:
            return create_db_engine(url, poolclass=sa.pool.NullPool, sqlite_mode=sqlite_mode)
        key = hashlib.sha256(f"{sqlite_mode}\0{url.render_as_string(hide_password=False)}".encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            stale = [k for k, (e, used) in self._engines.items()
                     if now - used > self._idle_s and k != key and e.pool.checkedout() == 0]  # type: ignore[attr-defined]
            old = [self._engines.pop(k)[0] for k in stale]
            found = self._engines.get(key)
            if found is None:
                engine = create_db_engine(url, poolclass=sa.pool.QueuePool, pool_size=self._pool_size,
                                          max_overflow=-1, pool_recycle=self._idle_s, sqlite_mode=sqlite_mode)
                event.listen(engine, "checkin", _reset_on_checkin)
                _CACHED.add(engine)
            else:
                engine = found[0]
            self._engines[key] = (engine, now)
        for engine_ in old:
            engine_.dispose()
        return engine

    def release(self, engine: sa.Engine) -> None:
        """Done with ``engine`` for this execution: disposed unless the cache keeps it (then its idle
        time starts now: a long execution's engine is not disposed while it runs)."""
        if not is_cached(engine):
            engine.dispose()
            return
        with self._lock:
            for key, (kept, _) in self._engines.items():
                if kept is engine:
                    self._engines[key] = (kept, time.monotonic())

    def close(self) -> None:
        with self._lock:
            engines = [e for e, _ in self._engines.values()]
            self._engines.clear()
        for engine in engines:
            engine.dispose()

    def __len__(self) -> int:
        return len(self._engines)
