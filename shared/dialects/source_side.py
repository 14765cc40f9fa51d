"""The source side of a dialect: what the extractor asks of an engine it reads from.

Read-only sessions, result column types, streaming cursors, the bulk export of the fast path,
and the temporary tables that hold ``@resultN`` when a step reads another project's result.
Caller: ``shared/extract``. Engines override in
``<engine>_source.py``; defaults here are the DB-API's plain ways.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable

import sqlalchemy as sa

from shared.dialects.core import DialectCore
from shared.dialects.sqlrules import GENERIC, SqlRules
from shared.types import Column, to_sqlalchemy

if TYPE_CHECKING:
    from shared.privileges import SourcePrivileges


class SourceSide(DialectCore):
    """Reading from an engine: sessions, statements, result types, temporary tables."""

    # Source sessions are read-only and are closed (not pooled) after use when
    # ``discard_source_sessions``: temporary tables and session settings vanish with them.
    discard_source_sessions: ClassVar[bool] = True
    sql_flavor: ClassVar[str] = "generic"  # the name of sql_rules (planner and tokenizer take flavors)
    sql_rules: ClassVar[SqlRules] = GENERIC  # lexical rules the tokenizer reads (shared/extract/tokenizer.py)

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """Portable columns of a result from its DB-API cursor description."""
        raise NotImplementedError

    def describe_cursor(self, cursor: Any, sample_rows: list[tuple]) -> list[Column]:
        """Portable columns of an executed cursor (engines with richer metadata override)."""
        return self.describe_result(list(cursor.description or []), sample_rows)

    def result_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """Per column, a function turning a driver value into the portable Python value (or None)."""
        return [None] * len(columns)

    def prepare_source_session(self, dbapi_conn: Any) -> None:
        """Session setup before any statement (value conversions such as JSON as text)."""

    def drop_privileges(self, dbapi_conn: Any, role: str | None) -> None:
        """Switch the session to the project's ``read_role`` before anything runs (engines that can)."""
        if role:
            from shared.errors import ConfigError
            raise ConfigError(f"the project option read_role is not supported on {self.name} (only PostgreSQL)")

    def source_privileges(self, dbapi_conn: Any, *, project_id: int) -> "SourcePrivileges":
        """What the session's role can do beyond reading (see :mod:`shared.privileges`); engines
        without roles to ask about answer ``checked=False``."""
        from shared.privileges import SourcePrivileges
        return SourcePrivileges(project_id=project_id, engine=self.name, role="", checked=False)

    def begin_read_only(self, dbapi_conn: Any, *, timeout_s: float | None) -> None:
        """End the setup transaction and start a read-only one with a statement timeout."""
        raise NotImplementedError

    # rewrites_reads: the general path describes a statement first and runs read_sql's rewrite
    rewrites_reads: ClassVar[bool] = False

    def read_sql(self, dbapi_conn: Any, sql: str, columns: list[Column]) -> str | None:
        """The statement the general path runs for ``sql`` whose result has ``columns`` (None: ``sql``)."""
        return None

    def open_stream(self, dbapi_conn: Any, sql: str) -> Any:
        """Execute ``sql`` on a streaming (server-side) cursor; rows come with ``fetchmany``."""
        cursor = dbapi_conn.cursor()
        cursor.execute(sql)
        return cursor

    def abandon_stream(self, cursor: Any) -> None:
        """Let go of a streaming cursor whose session is being discarded (nothing more is read)."""
        try:
            cursor.close()
        except Exception:  # noqa: BLE001 - its connection is closed already
            pass

    def cancel_statement(self, dbapi_conn: Any, cursor: Any, engine: sa.Engine) -> None:
        """Cancel the statement running on ``dbapi_conn`` (called from another thread)."""
        raise NotImplementedError

    def release_source_session(self, dbapi_conn: Any, temp_tables: list[str]) -> None:
        """Undo session state before a pooled connection is reused (when not discarded)."""

    def classify_error(self, exc: BaseException) -> str:
        """``connection``, ``timeout``, ``cancelled``, ``read_only`` or ``source`` for a driver error."""
        return "source"

    def probe_sql(self, sql: str) -> str:
        """``sql`` wrapped so that it parses and plans but returns no rows."""
        return f"SELECT * FROM (\n{sql}\n) dm_probe LIMIT 0"

    def temp_table_name(self, step: int, token: str) -> str:
        """Name of the session temporary table holding ``@result{step}``."""
        return f"dm_result{step}_{token}"

    def temp_column_type(self, col: Column) -> sa.types.TypeEngine:
        """The engine type of a temporary-table column for a portable column."""
        return to_sqlalchemy(col)

    def create_temp_table_sql(self, sa_dialect: sa.Dialect, name: str, columns: list[Column]) -> str:
        """``CREATE TEMPORARY TABLE`` for a referenced result (names quoted by the dialect), to run
        without parameters: percent signs in names are not doubled (the DDL holds no literals)."""
        table = sa.Table(name, sa.MetaData(), *(sa.Column(c.name, self.temp_column_type(c)) for c in columns),
                         prefixes=["TEMPORARY"])
        ddl = str(sa.schema.CreateTable(table).compile(dialect=sa_dialect)).strip()
        return ddl.replace("%%", "%") if getattr(sa_dialect.identifier_preparer, "_double_percents", False) else ddl

    def load_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """Per column, a function adapting a portable value for this driver's temp-table load."""
        return [None] * len(columns)

    def bulk_load_temp(self, dbapi_conn: Any, sa_dialect: sa.Dialect, name: str, columns: list[Column],
                       batches: Iterable[list[tuple]]) -> int:
        """Load ``batches`` into temp table ``name`` (multi-row ``executemany``); returns the row count."""
        mark = "?" if sa_dialect.paramstyle in ("qmark", "numeric") else "%s"
        cols = ", ".join(self.quote_identifier(sa_dialect, c.name) for c in columns)
        sql = (f"INSERT INTO {self.quote_identifier(sa_dialect, name)} ({cols}) "
               f"VALUES ({', '.join([mark] * len(columns))})")
        convert = self.load_converters(columns)
        total = 0
        cursor = dbapi_conn.cursor()
        for batch in batches:
            cursor.executemany(sql, self.adapt_rows(batch, convert))
            total += len(batch)
        cursor.close()
        return total

    def bulk_export_sql(self, sql: str, columns: list[Column], fmt: str) -> str | None:
        """The statement rendering ``sql``'s result in bulk format ``fmt`` (see
        :mod:`shared.dialects.bulk`), or None when this engine cannot (the general path runs)."""
        return None

    def binary_export(self, sql: str, description: Any,
                      into: dict[str, tuple[int, int] | None]) -> tuple[str, str] | None:
        """``(format, statement)`` passing ``sql``'s result through in the destination engine's own
        binary form (PostgreSQL to PostgreSQL: :mod:`shared.dialects.pgbinary`), or None."""
        return None

    def bulk_export(self, dbapi_conn: Any, sql: str, *, chunk_bytes: int,
                    max_rows: int) -> Iterable[tuple[bytes, int]]:
        """Run a :meth:`bulk_export_sql` statement: ``(payload, rows)`` chunks ending at row boundaries,
        each ending once it reaches ``chunk_bytes`` or ``max_rows``."""
        raise NotImplementedError

    @staticmethod
    def adapt_rows(rows: list[tuple], convert: list[Callable[[Any], Any] | None]) -> list[tuple]:
        """``rows`` with each value passed through its column's converter (None values kept)."""
        if not any(convert):
            return rows
        return [tuple(v if f is None or v is None else f(v) for v, f in zip(row, convert)) for row in rows]
