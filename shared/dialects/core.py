"""What both sides of a dialect share: the engine's name, quoting, connecting, row locks, retries.

:class:`DialectCore` is the root of the two focused interfaces, :class:`~shared.dialects.
source_side.SourceSide` (what the extractor calls) and :class:`~shared.dialects.destination_side.
DestinationSide` (what the loader calls); :class:`~shared.dialects.base.Dialect` is both. The
facts here replace ``if engine == …`` checks elsewhere: connecting (``shared/connections.py``),
row locks on the metadata store (scheduler, ``shared/store``) and the retry decision.
"""
from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL

Stmt = TypeVar("Stmt", bound=sa.Select)


class DialectCore:
    """Engine facts both sides use."""

    name: ClassVar[str] = "base"
    # connecting (shared/connections.py): the SQLAlchemy driver a project uses, the port it
    # defaults to, whether ``database`` is a file path (no host), and driver arguments every
    # service wants unless the project's options say otherwise
    driver: ClassVar[str] = ""
    default_port: ClassVar[int | None] = None
    file_database: ClassVar[bool] = False
    connect_defaults: ClassVar[dict[str, Any]] = {}

    def quote_identifier(self, sa_dialect: sa.Dialect, name: str) -> str:
        """Quote one identifier with the engine's own rules."""
        return sa_dialect.identifier_preparer.quote_identifier(name)

    def reflected_column_name(self, name: str) -> str:
        """A column name as SQLAlchemy's reflection gives it, as the engine means it."""
        return name

    def quote_table(self, sa_dialect: sa.Dialect, table: str) -> str:
        """Quote ``table`` or ``schema.table``."""
        return ".".join(self.quote_identifier(sa_dialect, part) for part in table.split("."))

    def complete_url(self, url: URL) -> URL:
        """A project's URL with what the engine needs and the project did not say (default: as it is)."""
        return url

    def with_open_mode(self, url: URL, mode: str) -> URL:
        """``url`` opened read-only (``"ro"``) or read-write without creating anything (``"rw"``),
        for engines whose database is a file (default: as it is)."""
        return url

    def lock_rows(self, stmt: Stmt, *, skip_locked: bool = False) -> Stmt:
        """``stmt`` locking the rows it selects until the transaction ends, where the engine can
        (``skip_locked``: rows another transaction holds are left out instead of waited for).
        Default: no lock (SQLite serialises writers itself)."""
        return stmt

    def serialise(self, conn: sa.Connection, key: int) -> None:
        """Hold a lock named by ``key`` until ``conn``'s transaction ends, where the engine has such
        locks (concurrent migrations of the metadata store wait for each other). Default: none."""

    def classify(self, exc: BaseException) -> str:
        """``"transient"`` when a retry may heal ``exc`` (lost connection, deadlock, serialization
        failure, lock or statement timeout), else ``"permanent"`` (wrong password, unknown
        database, syntax, missing table, …): by this engine's SQLSTATE or error number, never by
        the message's words. Rules per engine, and the one rule for errors without a known code,
        in :mod:`shared.dialects.classify`."""
        from shared.dialects.classify import classify_for
        return classify_for(self.name, exc)

    def is_transient(self, exc: BaseException) -> bool:
        """True when :meth:`classify` says ``transient``."""
        from shared.dialects.classify import TRANSIENT
        return self.classify(exc) == TRANSIENT
