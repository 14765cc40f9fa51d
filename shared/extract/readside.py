"""A read-only session that runs several queries over one job result (for ``compare``).

It plans exactly as an execution does (:func:`shared.extract.planner.plan`): steps on the
final step's project are pushed down as CTEs, results of other projects are materialised
into temporary tables of this session (the only writes, made before the session turns
read-only, as the extractor does). Then the session goes read-only (the database
enforces it) and every query it runs is a SELECT over the final step's SQL wrapped as a
derived table. Sessions are prepared for checksums
(:func:`shared.dialects.checksum.prepare_checksum_session`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shared.dialects.checksum import prepare_checksum_session
from shared.errors import SourceError
from shared.extract.planner import build_sql, plan
from shared.extract.runner import DEFAULT_BATCH_ROWS, flavors_of, step_problems
from shared.extract.session import Context, Session
from shared.jobspec import StepSpec
from shared.types import Column


class ReadSide:
    """``open()`` → the result's columns; ``query(sql)`` → rows; ``close()``. Raises SourceError,
    ConnectionLost, TimedOut naming the step."""

    def __init__(self, steps: list[StepSpec], engines: Mapping[int, sa.Engine], *, timeout_s: float | None) -> None:
        self._ctx = Context(list(steps), engines, DEFAULT_BATCH_ROWS, timeout_s)  # batches move referenced results
        self._session: Session | None = None
        self.sql = ""
        self.engine_name = ""

    def open(self) -> list[Column]:
        steps, engines = self._ctx.steps, self._ctx.engines
        problems = [m for _, m in step_problems(steps, engines)]
        if problems:
            raise SourceError("; ".join(problems))
        flavors = flavors_of(steps, engines)
        s = self._session = Session(plan(steps, len(steps), flavors), self._ctx)
        self.engine_name = s.dialect.name
        with s.guard("connecting"):
            try:
                s.raw = s.engine.raw_connection()
            except sa.exc.DBAPIError as exc:
                raise (exc.orig or exc) from exc
        with self._ctx.lock:
            self._ctx.active.add(s)
        conn = s.raw.driver_connection
        s.dialect.prepare_source_session(conn)
        names = s._materialise_all()  # noqa: SLF001 - the extractor's own materialisation
        self.sql = build_sql(steps, s.plan, names, flavor=s.dialect.sql_flavor)
        with s.guard("starting a read-only transaction"):
            s.dialect.begin_read_only(conn, timeout_s=self._ctx.timeout_s)
            prepare_checksum_session(self.engine_name, conn)
            s.columns = s._describe(self.sql)  # noqa: SLF001
        s._check_names()  # noqa: SLF001 - two columns of one name cannot be compared by name
        return s.columns

    def query(self, sql: str) -> list[tuple]:
        """All rows of one read-only query (no bound parameters: literals are hex digits only)."""
        s = self._session
        if s is None:
            raise SourceError("ReadSide.open() must be called first")
        with s.guard("comparing"):
            cur = s.raw.driver_connection.cursor()
            try:
                cur.execute(sql)
                return list(cur.fetchall())
            finally:
                cur.close()

    def quote(self, name: str) -> str:
        assert self._session is not None
        return self._session.engine.dialect.identifier_preparer.quote(name)

    def cancel(self) -> None:
        self._ctx.cancel("timeout")

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> "ReadSide":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
