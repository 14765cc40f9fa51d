"""The destination side of a dialect: what the loader asks of an engine it writes to.

THE load transaction, staging tables, bulk inserts and imports, the mode statements (insert,
upsert, sync_delete, truncate_load), server-side row isolation, and which errors are about a
row. Caller: ``shared/load``. Engines override in
``<engine>_destination.py``; the set-based SQL lives in ``<engine>_load.py`` / ``loading.py``.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import sqlalchemy as sa

from shared.dialects.core import DialectCore
from shared.types import Column


class DestinationSide(DialectCore):
    """Writing to an engine inside one transaction."""

    # Capability table (see shared/load for the semantics these serve):
    #   stage_plain_inserts   whether plain inserts (truncate_load, keyless insert_only) go
    #                         through staging (False: bulk-loaded straight into the destination)
    stage_plain_inserts: ClassVar[bool] = False
    #   release_after_rollback  a SAVEPOINT stays open after ROLLBACK TO it: RELEASE it as well
    #   statement_rollback    a failed statement undoes only itself and the transaction goes on
    #                         (InnoDB): a write() attempt needs no SAVEPOINT
    release_after_rollback: ClassVar[bool] = True
    statement_rollback: ClassVar[bool] = False
    #   server_isolation      create_isolation/run_isolation try staged rows one by one on the server
    server_isolation: ClassVar[bool] = False
    temp_table_prefix: ClassVar[str] = "TEMPORARY"
    #   rowid_primary_key     a lone INTEGER PRIMARY KEY is the row id: the engine assigns it when
    #                         the source does not give it (not a required column; SQLite)
    rowid_primary_key: ClassVar[bool] = False
    # set per load session from the job (DestinationSpec.allow_rounding): accept values rounded
    # to a column's scale instead of failing their rows (shared.dialects.exact)
    allow_rounding: bool = False

    # bulk_import_format: the bulk text (shared.dialects.bulk) bulk_import reads, or None;
    # bulk_import_refuses_rounding: bulk_import itself refuses a batch the engine rounded (else a
    # batch that could be rounded to a column's scale goes the general, checked way)
    bulk_import_format: ClassVar[str | None] = None
    bulk_import_refuses_rounding: ClassVar[bool] = False

    def bulk_import_accepts(self, conn: sa.Connection, fmt: str, target: sa.Table, columns: list[str]) -> bool:
        """Whether :meth:`bulk_import` reads payloads in ``fmt`` into ``columns`` of ``target`` as the
        values the general path writes (the caller checks the text formats' column types)."""
        return fmt == self.bulk_import_format

    def decode_bulk(self, conn: sa.Connection, payload: bytes, fmt: str, rows: int) -> list[tuple]:
        """A payload in a format that is not bulk text (:mod:`shared.dialects.bulk` parses those) back
        as the rows the general path would have read. Raises ValueError."""
        raise ValueError(f"unknown bulk format {fmt!r}")

    def bulk_import(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    payload: bytes, *, kinds: list[str], rows: int, fmt: str | None = None) -> None:
        """Load a payload of ``rows`` rows in ``fmt`` (default :attr:`bulk_import_format`) into ``table``.

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

    def create_written_keys(self, conn: sa.Connection, name: str, target: sa.Table,
                            key: list[str]) -> tuple[sa.TableClause, bool]:
        """The table of keys a keyed mode wrote (:class:`shared.load.keys.WrittenKeys`); True when it
        is UNIQUE on the key, so :meth:`claim_keys` can check and record a batch in one statement.
        Default: :meth:`create_key_table` (not unique; checked by :meth:`check_keys`)."""
        return self.create_key_table(conn, name, target, key), False

    def claim_keys(self, conn: sa.Connection, staging: sa.TableClause, written: sa.TableClause,
                   key: list[str]) -> tuple[int, int]:
        """Add the staged keys to a UNIQUE written-keys table, skipping those already there:
        (staged rows, keys added). Fewer added than staged means a key repeats (within the batch or
        with an earlier one). Only for engines whose :meth:`create_written_keys` says unique."""
        raise NotImplementedError

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

    def counted_upsert_start(self, conn: sa.Connection, stats: sa.Executable, *, target: sa.Table,
                             staging: sa.TableClause, columns: list[str], key: list[str],
                             staged: int) -> tuple[int, tuple[int, int, int] | None]:
        """The start engines that count an upsert from a stats query share: ``stats`` gives (staged
        rows, distinct staged keys, staged rows whose key exists); returns (matched rows, the
        upsert's counts when a key-only batch was settled by :meth:`insert_new`, else None).

        Raises DuplicateKeysInBatch when the batch holds a key twice (counts would be ambiguous).
        """
        from shared.dialects.loading import DuplicateKeysInBatch
        rows, distinct, matched = conn.execute(stats).one()
        if distinct < rows:
            raise DuplicateKeysInBatch()
        if not [c for c in columns if c not in key]:
            inserted, skipped = self.insert_new(conn, target, staging, columns, key, staged)
            return matched, (inserted, 0, skipped)
        return matched, None

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
        """truncate_load: empty the destination inside THE transaction, always by DELETE (TRUNCATE
        commits on MySQL; on PostgreSQL it takes an ACCESS EXCLUSIVE lock, so readers would block
        instead of seeing the old rows until commit)."""
        return conn.execute(sa.delete(target)).rowcount

    def is_row_error(self, exc: BaseException) -> bool:
        """True when ``exc`` is about the data of some row (constraint, type, length), so
        isolating the row makes sense; False for statement-level errors (permission, syntax)."""
        return isinstance(getattr(exc, "orig", exc), Exception) and not self.is_transient(exc)

    def load_error_message(self, exc: BaseException) -> str:
        """The database's own message for a failed row, without driver noise."""
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip()
        return text.splitlines()[0] if text else type(orig).__name__
