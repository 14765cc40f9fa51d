"""What differs between database engines, in one place per engine.

Each engine module (``postgresql.py``, ``mysql.py``, ``sqlite.py``, ``mssql.py``)
defines a :class:`Dialect` subclass. Capabilities are class attributes (a small
table, not scattered ``if engine ==`` checks); behaviour is methods. The loader and
the extractor stay engine-neutral and call only what is declared here.

Two owners edit these modules: the EXTRACTION section (read-only sessions, result
column types, streaming cursors, temporary tables for ``@resultN``) and the LOADING
section (staging, bulk load, mode statements, error classification).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable

import sqlalchemy as sa

from shared.types import Column, to_sqlalchemy

if TYPE_CHECKING:
    from shared.privileges import SourcePrivileges


class Dialect:
    """Engine facts and engine-specific operations."""

    name: ClassVar[str] = "base"
    max_identifier_length: ClassVar[int] = 63
    transactional_ddl: ClassVar[bool] = False
    truncate_is_transactional: ClassVar[bool] = False

    def quote_identifier(self, sa_dialect: sa.Dialect, name: str) -> str:
        """Quote one identifier with the engine's own rules."""
        return sa_dialect.identifier_preparer.quote_identifier(name)

    def reflected_column_name(self, name: str) -> str:
        """A column name as SQLAlchemy's reflection gives it, as the engine means it."""
        return name

    def quote_table(self, sa_dialect: sa.Dialect, table: str) -> str:
        """Quote ``table`` or ``schema.table``."""
        return ".".join(self.quote_identifier(sa_dialect, part) for part in table.split("."))

    # ------------------------------------------------------------------ EXTRACTION
    # (owned by shared/extract; see that package)
    # Source sessions are read-only and are closed (not pooled) after use when
    # ``discard_source_sessions``: temporary tables and session settings vanish with them.
    discard_source_sessions: ClassVar[bool] = True
    sql_flavor: ClassVar[str] = "generic"  # tokenizer rules for @resultN (shared/extract/tokenizer.py)

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

    # ------------------------------------------------------------------ LOADING
    # (owned by shared/load; see that package)
    # Capability table (see shared/load for the semantics these serve):
    #   bulk_method           how a batch reaches a table: copy | executemany | fast_executemany
    #   upsert_form           on_conflict | on_duplicate_key | merge
    #   stage_plain_inserts   whether plain inserts (truncate_load, keyless insert_only) go
    #                         through staging (False: bulk-loaded straight into the destination)
    #   truncate_load_clear   how truncate_load empties the destination inside THE transaction:
    #                         always DELETE (TRUNCATE commits on MySQL; on PostgreSQL it takes an
    #                         ACCESS EXCLUSIVE lock, so readers would block instead of seeing the
    #                         old rows until commit)
    #   aware_timestamps      the engine keeps an instant in a time-zone-aware column type
    bulk_method: ClassVar[str] = "executemany"
    upsert_form: ClassVar[str] = "on_conflict"
    stage_plain_inserts: ClassVar[bool] = False
    truncate_load_clear: ClassVar[str] = "delete"
    aware_timestamps: ClassVar[bool] = False
    #   release_after_rollback  a SAVEPOINT stays open after ROLLBACK TO it: RELEASE it as well
    #   statement_rollback    a failed statement undoes only itself and the transaction goes on
    #                         (InnoDB): a write() attempt needs no SAVEPOINT
    release_after_rollback: ClassVar[bool] = True
    statement_rollback: ClassVar[bool] = False
    #   server_isolation      create_isolation/run_isolation try staged rows one by one on the server
    server_isolation: ClassVar[bool] = False
    temp_table_prefix: ClassVar[str] = "TEMPORARY"
    # set per load session from the job (DestinationSpec.allow_rounding): accept values rounded
    # to a column's scale instead of failing their rows (shared.dialects.exact)
    allow_rounding: bool = False

    # bulk_import_format: the bulk text (shared.dialects.bulk) bulk_import reads, or None;
    # bulk_import_refuses_rounding: bulk_import itself refuses a batch the engine rounded (else a
    # batch that could be rounded to a column's scale goes the general, checked way)
    bulk_import_format: ClassVar[str | None] = None
    bulk_import_refuses_rounding: ClassVar[bool] = False

    def bulk_import(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    payload: bytes, *, kinds: list[str], rows: int) -> None:
        """Load a :attr:`bulk_import_format` payload of ``rows`` rows into ``table``.

        Raises DBAPIError (a row-level one when the data is refused) or
        :class:`shared.dialects.loading.BulkRefused` when the engine took the data only
        with warnings; the caller then rolls back and writes the batch the general way.
        """
        raise NotImplementedError

    def prepare_load_connection(self, conn: sa.Connection) -> None:
        """Driver/session setup before THE load transaction starts (default: nothing)."""

    def start_load_transaction(self, conn: sa.Connection, *, statement_timeout_s: float | None) -> None:
        """Settings inside the just-begun load transaction (time zone, strictness, timeout)."""

    def set_lock_timeout(self, conn: sa.Connection, seconds: float) -> None:
        """Make this connection's lock waits give up after ``seconds`` (a transient error)."""

    def load_cancel_handle(self, conn: sa.Connection) -> Any:
        """What :meth:`cancel_load_statement` needs to cancel this connection's statement."""
        return conn.connection.dbapi_connection

    def cancel_load_statement(self, engine: sa.Engine, handle: Any) -> None:
        """Cancel the statement now running on the load connection (any thread)."""
        raise NotImplementedError(f"{self.name}: cancelling a running statement is not supported")

    def row_encoder(self, target_columns: list[sa.Column], source_columns: list[Column]) -> Callable[[tuple], Any]:
        """A function turning one source row into what :meth:`bulk_insert` sends.

        The function raises ValueError with a clear message when a value cannot be held.
        """
        raise NotImplementedError

    def null_refusals(self, conn: sa.Connection, target: sa.Table, columns: list[str]) -> list[tuple[int, str]]:
        """``(index in columns, the engine's message)`` for each column where the engine certainly
        refuses NULL, so such rows fail before reaching the database (exactly as the database would
        fail them). Only where certain: no triggers, no engine-assigned values. Default: none."""
        return []

    def create_staging(self, conn: sa.Connection, name: str, target: sa.Table, columns: list[str]) -> sa.TableClause:
        """A session temporary table shaped like ``columns`` of ``target`` (no constraints)."""
        from shared.dialects.loading import build_staging_select, compile_sql, temp_table
        select = compile_sql(build_staging_select(target, columns), conn.dialect)
        conn.exec_driver_sql(f"CREATE {self.temp_table_prefix} TABLE "
                             f"{self.quote_identifier(conn.dialect, name)} AS {select}")
        return temp_table(name, columns)

    def create_key_table(self, conn: sa.Connection, name: str, target: sa.Table, key: list[str]) -> sa.TableClause:
        """A session temporary table for keys (seen by a sync_delete, written by a keyed mode), indexed."""
        table = self.create_staging(conn, name, target, key)
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"CREATE INDEX {prep.quote(name + '_ix')} ON {prep.format_table(table)} "
                             f"({', '.join(prep.quote(k) for k in key)})")
        return table

    def create_isolation(self, conn: sa.Connection, *, token: str, staging: sa.TableClause, target: sa.Table,
                         columns: list[str], key: list[str], mode: str, written: sa.TableClause | None,
                         seen: sa.TableClause | None) -> Any:
        """Prepare server-side row isolation for one session (engines with ``server_isolation``);
        returns the handle :meth:`run_isolation` takes."""
        raise NotImplementedError

    def run_isolation(self, conn: sa.Connection, handle: Any, *, columns: list[str],
                      rows: list[Any]) -> list[tuple[int, str | None, int, int]]:
        """Stage encoded ``rows`` in order and apply each on its own on the server:
        (1-based position, error or None, inserted, updated) per row. Raises DBAPIError when the
        rows cannot be staged."""
        raise NotImplementedError

    def key_collations(self, conn: sa.Connection, target: sa.Table, key: list[str]) -> list[str | None]:
        """Per key column, a collation that comparisons must name because the staging copy loses it
        (default: none; the copies keep the destination's collations)."""
        return [None] * len(key)

    def check_keys(self, conn: sa.Connection, staging: sa.TableClause, written: sa.TableClause, key: list[str],
                   collations: list[str | None]) -> tuple[int, int, int]:
        """(staged rows, distinct staged keys, staged rows whose key this execution already wrote)."""
        from shared.dialects.loading import build_key_check
        rows, distinct, repeated = conn.execute(build_key_check(staging, written, key, collations)).one()
        return int(rows), int(distinct), int(repeated)

    def clear_staging(self, conn: sa.Connection, staging: sa.TableClause, *, dirty: int = 0) -> bool:
        """Empty a staging table (inside the transaction; never an implicit commit). ``dirty``: rows
        staged since it was last emptied for good; returns True when it was (default: always)."""
        conn.execute(sa.delete(staging))
        return True

    def bulk_insert(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    rows: list[Any]) -> None:
        """Send encoded ``rows`` into ``table`` in bulk: by default one INSERT through the driver's
        ``executemany`` (PyMySQL rewrites it into multi-row statements; sqlite3 loops in C).
        Engines with a faster way override it. Raises the driver's error as DBAPIError."""
        prep = conn.dialect.identifier_preparer
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = (f"INSERT INTO {prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)}) "
               f"VALUES ({', '.join([mark] * len(columns))})")
        conn.exec_driver_sql(sql, rows)

    def insert_new(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str],
                   key: list[str], staged: int) -> tuple[int, int]:
        """insert_only with a key: (inserted, skipped). Other errors (not key conflicts) raise."""
        from shared.dialects.loading import build_insert_new
        inserted = conn.execute(build_insert_new(target, staging, columns, key)).rowcount
        return inserted, staged - inserted

    def insert_all(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str]) -> int:
        """Plain inserts from staging (engines with ``stage_plain_inserts``); returns the count."""
        select = sa.select(*[staging.c[c] for c in columns])
        return conn.execute(sa.insert(target).from_select(columns, select)).rowcount

    def upsert(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str],
               key: list[str], staged: int) -> tuple[int, int, int]:
        """Insert new and update changed rows: (inserted, updated, unchanged).

        Raises DuplicateKeysInBatch when the engine cannot count a batch holding a key twice.
        """
        raise NotImplementedError

    def record_seen(self, conn: sa.Connection, seen: sa.TableClause, staging: sa.TableClause, key: list[str]) -> None:
        """sync_delete: add the staged batch's keys to ``seen``."""
        from shared.dialects.loading import build_record_seen
        conn.execute(build_record_seen(seen, staging, key))

    def count_sync_deletes(self, conn: sa.Connection, target: sa.Table, seen: list[sa.TableClause],
                           key: list[str]) -> tuple[int, int]:
        """(rows a sync_delete would delete, rows in the destination)."""
        from shared.dialects.loading import build_count_missing
        missing, total = conn.execute(build_count_missing(target, seen, key)).one()
        return int(missing), int(total)

    def delete_unseen(self, conn: sa.Connection, target: sa.Table, seen: list[sa.TableClause], key: list[str]) -> int:
        """sync_delete: delete destination rows whose key is in none of the ``seen`` tables; returns the count."""
        from shared.dialects.loading import build_delete_missing
        return conn.execute(build_delete_missing(target, seen, key)).rowcount

    def clear_destination(self, conn: sa.Connection, target: sa.Table) -> int:
        """truncate_load: empty the destination inside the transaction (see truncate_load_clear)."""
        return conn.execute(sa.delete(target)).rowcount

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

    def is_row_error(self, exc: BaseException) -> bool:
        """True when ``exc`` is about the data of some row (constraint, type, length), so
        isolating the row makes sense; False for statement-level errors (permission, syntax)."""
        return isinstance(getattr(exc, "orig", exc), Exception) and not self.is_transient(exc)

    def load_error_message(self, exc: BaseException) -> str:
        """The database's own message for a failed row, without driver noise."""
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip()
        return text.splitlines()[0] if text else type(orig).__name__
