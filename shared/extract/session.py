"""One source session: move referenced results in, go read-only, stream one query.

(A little over 300 lines: the session's lifecycle — temp tables, read-only transaction,
watermark binding, streaming, cancel — is one sequence that reads best in one place.)

A session takes a raw DB-API connection from its project's engine, creates and
bulk-loads a temporary table for each result that comes from another project (while
the session may still write), then starts a read-only transaction with a statement
timeout and runs its single statement on a streaming cursor. Engine specifics come
from :mod:`shared.dialects`; this module stays engine-neutral.
"""
from __future__ import annotations

import re

import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from shared.dialects import SourceSide, get_dialect
from shared.errors import Cancelled, ConnectionLost, DatamigError, SourceError, TimedOut
from shared.dialects.sourcevalues import has_dates, zero_dates_to_null
from shared.errortext import clean
from shared.extract.planner import CTE_NAME, SessionPlan, build_sql, step_label
from shared.jobspec import StepSpec
from shared.privileges import SourcePrivileges, check_privileges, read_role_of
from shared.types import Column

READ_ONLY_HINT = "steps must only read: source sessions are read-only, so nothing was changed"


@dataclass
class Context:
    """What every session of one extraction shares, including the cancel switch."""

    steps: list[StepSpec]
    engines: Mapping[int, sa.Engine]
    batch_rows: int
    timeout_s: float | None
    probe: bool = False  # wrap each statement so it plans but returns no rows (validation)
    zero_dates: Mapping[int, str] = field(default_factory=dict)  # project id -> "keep" | "null"
    warnings: dict[str, int] = field(default_factory=dict)  # counts by kind (e.g. zero_dates)
    strict: bool = False  # DM_STRICT_SOURCES: refuse a source whose role is not read-only
    privileges: dict[int, SourcePrivileges] = field(default_factory=dict)  # by project, as each session found
    watermark: tuple[str | None, Any] | None = None  # (kind, value) bound where @watermark is written
    cancelled: str | None = None  # why: "cancelled" or "timeout"
    active: set["Session"] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel every running statement (thread-safe); later calls raise too."""
        with self.lock:
            self.cancelled = self.cancelled or reason
            sessions = list(self.active)
        for s in sessions:
            s.cancel_statement()

    def check(self) -> None:
        if self.cancelled == "timeout":
            raise TimedOut("the extraction ran past its time limit and was stopped")
        if self.cancelled:
            raise Cancelled("the extraction was cancelled")


class Session:
    """The connection producing one :class:`SessionPlan`'s result."""

    def __init__(self, plan: SessionPlan, ctx: Context) -> None:
        self.plan, self.ctx = plan, ctx
        self.engine = ctx.engines[plan.project_id]
        self.dialect: SourceSide = get_dialect(self.engine.dialect.name)
        self.label = step_label(ctx.steps, plan.step)
        self.raw: Any = None
        self.cursor: Any = None
        self.temp_tables: list[str] = []
        self.columns: list[Column] = []
        self._first: list[tuple] = []
        self.bulk_sql: str | None = None
        self.bulk_format: str | None = None  # the format bulk_sql renders
        self._description: Any = None  # the driver's description of the last _describe
        self._binary = False  # bulk_sql is the engine's binary pass-through (binary_export)
        self._streaming = False  # a statement may still be sending rows (stopped on close)
        self._chunks: Any = None  # the bulk export's chunk iterator (its helper thread reads the connection)
        self._convert: list[Callable[[Any], Any] | None] = []

    # -- lifecycle -------------------------------------------------------------------
    def start(self, bulk_format: str | None = None,
              binary_into: dict[str, tuple[int, int] | None] | None = None) -> list[Column]:
        """Connect, materialise references, run the statement; returns its columns.

        With ``bulk_format`` (see :mod:`shared.dialects.bulk`) and an engine that can render
        the result in it, the statement is only described here and :meth:`bulk_batches`
        streams it as bulk text; otherwise :meth:`batches` streams rows. ``binary_into`` (the
        destination's column types, PostgreSQL only) lets the engine pass the result through in
        binary form instead where every column allows (:attr:`bulk_format` tells which).
        Raises SourceError, ConnectionLost, Cancelled or TimedOut naming the step.
        """
        self.ctx.check()
        with self.guard("connecting"):
            try:
                self.raw = self.engine.raw_connection()
            except sa.exc.DBAPIError as exc:
                raise (exc.orig or exc) from exc
        with self.ctx.lock:
            self.ctx.active.add(self)
        self.dialect.prepare_source_session(self.raw.driver_connection)
        self._check_role()
        names = self._materialise_all()
        sql = build_sql(self.ctx.steps, self.plan, names, flavor=self.dialect.sql_flavor,
                        watermark=self._bind_watermark())
        if self.ctx.probe:
            sql = self.dialect.probe_sql(sql)
        with self.guard("running"):
            self.dialect.begin_read_only(self.raw.driver_connection, timeout_s=self.ctx.timeout_s)
            if bulk_format and not self.ctx.probe:
                self.columns = self._describe(sql)
                binary = self.dialect.binary_export(sql, self._description, binary_into) if binary_into else None
                self._binary = binary is not None
                self.bulk_format, self.bulk_sql = binary or (bulk_format, self.dialect.bulk_export_sql(
                    sql, self.columns, bulk_format))
                if self.bulk_sql is not None and self._zero_dates_null() and has_dates(self.columns):
                    self.bulk_sql = None  # dates are mapped row by row
            if self.bulk_sql is None:
                described, sql = self._read_sql(sql)
                self.cursor = self.dialect.open_stream(self.raw.driver_connection, sql)
                self._first = list(self.cursor.fetchmany(self.ctx.batch_rows))
                self._streaming = len(self._first) >= self.ctx.batch_rows
                self.columns = described or self.dialect.describe_cursor(self.cursor, self._first)
        self.ctx.check()  # a cancelled MySQL SLEEP() returns normally
        self._check_names()
        self._convert = self.dialect.result_converters(self.columns)
        if self._zero_dates_null():
            self._convert = zero_dates_to_null(self.columns, self._convert, self.ctx.warnings)
        self._first = self.dialect.adapt_rows(self._first, self._convert)
        return self.columns

    def _bind_watermark(self) -> str | None:
        """Give the session the ``@watermark`` value (a bound parameter); what the SQL refers to it by."""
        from shared.dialects import watermark

        if self.ctx.watermark is None:
            return "NULL"  # a check of SQL written for an incremental job, outside a run

        if not watermark.supports(self.dialect.name):
            raise SourceError(f"{self.label}: @watermark needs a PostgreSQL or MySQL/MariaDB source "
                              f"(this step runs on {self.dialect.name})")
        kind, value = self.ctx.watermark
        with self.guard("binding @watermark"):
            watermark.bind(self.dialect.name, self.raw.driver_connection, kind=kind, value=value)
        return watermark.reference(self.dialect.name, kind)

    def _zero_dates_null(self) -> bool:
        return self.ctx.zero_dates.get(self.plan.project_id) == "null"

    def _read_sql(self, sql: str) -> tuple[list[Column] | None, str]:
        """(columns, statement) for the general path: the engine's rewrite of ``sql`` when it has one."""
        if not self.dialect.rewrites_reads or self.ctx.probe:
            return None, sql
        try:
            columns = self._describe(sql)
        except Exception:  # noqa: BLE001 - the statement itself, run as it is, reports its own error
            self.ctx.check()  # …unless the describe was interrupted by a cancel or the time limit
            return None, sql
        self.ctx.check()
        rewritten = self.dialect.read_sql(self.raw.driver_connection, sql, columns)
        return (columns, rewritten) if rewritten else (None, sql)
    def _check_role(self) -> None:
        """Switch to the project's read_role, ask what the role can do; strict mode refuses a risky one."""
        with self.guard("checking what the source role may do"):
            self.dialect.drop_privileges(self.raw.driver_connection, read_role_of(self.engine))
            found = self.dialect.source_privileges(self.raw.driver_connection, project_id=self.plan.project_id)
        with self.ctx.lock:
            self.ctx.privileges.setdefault(self.plan.project_id, found)
        check_privileges(found, strict=self.ctx.strict, where=self.label)

    def _describe(self, sql: str) -> list[Column]:
        """The result's columns from a run that returns no rows."""
        cursor = self.dialect.open_stream(self.raw.driver_connection, self.dialect.probe_sql(sql))
        try:
            cursor.fetchall()
            self._description = cursor.description
            return self.dialect.describe_cursor(cursor, [])
        finally:
            cursor.close()

    def bulk_batches(self, chunk_bytes: int, max_rows: int) -> Iterator[tuple[bytes, int]]:
        """The result as bulk-text chunks ``(payload, rows)`` of about ``chunk_bytes`` and at most
        ``max_rows`` rows (after ``start(bulk_format)``)."""
        assert self.bulk_sql is not None
        self._streaming = True
        with self.guard("reading"):
            binary = {"binary": True} if self._binary else {}
            chunks = iter(self.dialect.bulk_export(self.raw.driver_connection, self.bulk_sql,
                                                   chunk_bytes=chunk_bytes, max_rows=max_rows, **binary))
        self._chunks = chunks
        try:
            while True:
                self.ctx.check()
                with self.guard("reading"):
                    item = next(chunks, None)
                if item is None:
                    self._streaming = False
                    return
                yield item
        finally:
            self._close_chunks()

    def _close_chunks(self) -> None:
        """Stop the export's helper thread (it may be reading the connection)."""
        chunks, self._chunks = self._chunks, None
        close = getattr(chunks, "close", None)
        if close is not None:
            close()

    def batches(self) -> Iterator[list[tuple]]:
        """The rows, ``batch_rows`` at a time (the first batch was fetched by :meth:`start`)."""
        batch, self._first = self._first, []
        while batch:
            yield batch
            if len(batch) < self.ctx.batch_rows:
                self._streaming = False
                return
            self.ctx.check()
            with self.guard("reading"):
                batch = list(self.cursor.fetchmany(self.ctx.batch_rows))
            batch = self.dialect.adapt_rows(batch, self._convert)
        self._streaming = False

    def close(self) -> None:
        """Give the connection up; temporary tables and session settings go with it."""
        with self.ctx.lock:
            self.ctx.active.discard(self)
        if self.raw is not None and self._streaming and not self.ctx.cancelled:
            self.cancel_statement()  # stopped early: the server must not go on computing rows
        self._close_chunks()  # before the connection goes, also when an error left the export suspended
        self._streaming = False
        raw, cursor, self.raw, self.cursor = self.raw, self.cursor, None, None
        if raw is None:
            return
        try:
            if self.dialect.discard_source_sessions:
                if cursor is not None:
                    self.dialect.abandon_stream(cursor)  # an unread result goes with the session
                raw.invalidate()  # closes the DB session: temp tables and settings vanish
                return
            raw.rollback()
            self.dialect.release_source_session(raw.driver_connection, self.temp_tables)
            raw.close()
        except Exception:  # noqa: BLE001 - closing a broken session must not hide the real error
            try:
                raw.invalidate()
            except Exception:  # noqa: BLE001
                pass

    def cancel_statement(self) -> None:
        raw = self.raw
        if raw is not None:
            try:
                self.dialect.cancel_statement(raw.driver_connection, self.cursor, self.engine)
            except Exception:  # noqa: BLE001 - best effort; the flag stops the next fetch anyway
                pass

    # -- references --------------------------------------------------------------------
    def _materialise_all(self) -> dict[int, str]:
        prep = self.engine.dialect.identifier_preparer
        names = {n: prep.quote(CTE_NAME.format(n=n)) for n in self.plan.ctes}
        token = secrets.token_hex(4)
        for n, producer_plan in sorted(self.plan.temps.items()):
            name = self.dialect.temp_table_name(n, token)
            self._materialise(n, name, producer_plan)
            names[n] = prep.quote(name)
        if self.plan.temps:
            with self.guard("loading referenced results"):
                self.raw.commit()
        return names

    def _materialise(self, n: int, name: str, producer_plan: SessionPlan) -> None:
        producer = Session(producer_plan, self.ctx)
        try:
            columns = producer.start()
            what = f"loading @result{n} into temporary table {name}"
            with self.guard(what):
                cur = self.raw.driver_connection.cursor()
                cur.execute(self.dialect.create_temp_table_sql(self.engine.dialect, name, columns))
                cur.close()
                self.temp_tables.append(name)
                self.dialect.bulk_load_temp(self.raw.driver_connection, self.engine.dialect, name, columns,
                                            producer.batches())
        finally:
            producer.close()

    def _check_names(self) -> None:
        seen: set[str] = set()
        for c in self.columns:
            if c.name.lower() in seen:
                raise SourceError(f"{self.label}: the result has two columns named {c.name!r}; "
                                  "give each column a distinct alias")
            seen.add(c.name.lower())

    # -- errors ----------------------------------------------------------------------------
    @contextmanager
    def guard(self, doing: str) -> Iterator[None]:
        """Turn a driver error into SourceError / ConnectionLost / TimedOut / Cancelled naming the step."""
        try:
            yield
        except DatamigError:
            raise
        except Exception as exc:  # noqa: BLE001 - driver errors have no common base
            raise self.translate(exc, doing) from exc

    def translate(self, exc: BaseException, doing: str) -> DatamigError:
        kind = self.dialect.classify_error(exc)
        if self.ctx.cancelled:
            kind = self.ctx.cancelled
        text = clean(_user_words(" ".join(str(exc).split()) or type(exc).__name__))  # no driver tuples or SQL echo
        where = f"{self.label} (project {self.plan.project_id}, {self.dialect.name})"
        if kind == "cancelled":
            return Cancelled(f"{where}: cancelled while {doing}")
        if kind == "timeout":
            return TimedOut(f"{where}: statement timed out while {doing}: {text}")
        if kind == "connection":
            error: DatamigError = ConnectionLost(f"{where}: connection failed while {doing}: {text}")
        elif kind == "read_only":
            error = SourceError(f"{where}: {READ_ONLY_HINT}: {text}")
        else:
            error = SourceError(f"{where}: {doing} failed: {text}")
        error.transient = self.dialect.is_transient(exc)  # by the engine's code: a deadlock heals, a wrong password does not
        return error


_WRAPPER_CONTEXT = re.compile(r"\s*LINE \d+:.*$")
_CURSOR_NOISE = re.compile(r"\s*(QUERY: .*?(?= CONTEXT: |$)|CONTEXT: PL/pgSQL function inline_code_block line \d+ at OPEN)")
_NOT_ONE_QUERY = {
    "cannot open multi-query plan as cursor":
        "the database read more than one statement; a step is exactly one query (nothing was run)",
}
_NOT_A_QUERY = re.compile(r"cannot open (\w[\w ]*) query as cursor")


def _user_words(text: str) -> str:
    """The database's message without the parts that quote our own wrappers (the probe
    subquery, the server-side cursor): they point at SQL the user never wrote."""
    text = _CURSOR_NOISE.sub("", text)
    for raw, words in _NOT_ONE_QUERY.items():
        text = text.replace(raw, words)
    text = _NOT_A_QUERY.sub(lambda m: f"the database read a {m.group(1)} statement; a step must be a query "
                                      "that returns rows (nothing was run)", text)
    if "dm_probe" not in text and "WITHOUT HOLD" not in text:
        return text
    text = _WRAPPER_CONTEXT.sub("", text)
    return text.replace('syntax error at or near ")"', "syntax error at the end of the step's SQL (is it complete?)")
