"""PostgreSQL, the destination side (see ``destination_side.py``); the SQL it runs is in
``postgresql_load.py`` and ``postgresql_isolate.py``.
"""
from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa

from shared.dialects import pgbinary
from shared.dialects.destination_side import DestinationSide
from shared.dialects.exact import guarded_encoder
from shared.dialects.loading import kind_of
from shared.dialects.postgresql_isolate import create_isolation, run_isolation
from shared.dialects.postgresql_load import (
    COPY_COLUMN_RE, PG_NULL, build_pg_claim_keys, build_pg_insert_new, build_pg_upsert, copy_payload, copy_rows,
    pg_formatter, pg_null_refusals,
)
from shared.dialects.sourcevalues import pg_bit_formatter, with_source_checks
from shared.types import Column

PG_STAGING_DELETE_MAX = 256


class PostgresDestination(DestinationSide):
    """PostgreSQL as a destination."""

    # (owned by shared/load) COPY into a session temporary staging table, then one
    # set-based statement per batch: INSERT ... ON CONFLICT (key) with an IS DISTINCT FROM
    # guard, so unchanged rows are not rewritten. Plain inserts COPY straight into the
    # destination. Sessions run with TimeZone=UTC (a naive value into timestamptz is UTC).
    server_isolation = True

    bulk_import_format = "pg_text"

    def bulk_import(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    payload: bytes, *, kinds: list[str], rows: int, fmt: str | None = None) -> None:
        """``COPY table (cols) FROM STDIN`` with the payload as it came (COPY text), or in binary
        form between the header and trailer (:mod:`shared.dialects.pgbinary`)."""
        if pgbinary.is_binary(fmt):
            copy_payload(conn, table, columns, pgbinary.framing(payload), binary=True)
        else:
            copy_payload(conn, table, columns, payload)

    def bulk_import_accepts(self, conn: sa.Connection, fmt: str, target: sa.Table, columns: list[str]) -> bool:
        """COPY text; or binary COPY where every source type is exactly the column's (pgbinary.carries)."""
        if not pgbinary.is_binary(fmt):
            return fmt == self.bulk_import_format
        types = pgbinary.table_types(conn.connection.dbapi_connection,
                                     conn.dialect.identifier_preparer.format_table(target))
        return pgbinary.carries(pgbinary.types_of(fmt), [types.get(c) for c in columns])

    def decode_bulk(self, conn: sa.Connection, payload: bytes, fmt: str, rows: int) -> list[tuple]:
        """A binary COPY batch back as the source's rows (pgbinary.decode)."""
        if not pgbinary.is_binary(fmt):
            return super().decode_bulk(conn, payload, fmt, rows)
        return pgbinary.decode(conn, payload, fmt, rows)

    def start_load_transaction(self, conn: sa.Connection, *, statement_timeout_s: float | None) -> None:
        """TimeZone UTC and the statement timeout, both local to THE transaction."""
        conn.execute(sa.text("SELECT set_config('TimeZone', 'UTC', true)"))
        if statement_timeout_s:
            ms = str(max(1, int(statement_timeout_s * 1000)))
            conn.execute(sa.text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": ms})

    def set_lock_timeout(self, conn: sa.Connection, seconds: float) -> None:
        """``lock_timeout``, local to the transaction (SQLSTATE 55P03 when it expires)."""
        conn.execute(sa.text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": str(max(1, int(seconds * 1000)))})

    def cancel_load_statement(self, engine: sa.Engine, handle: Any) -> None:
        """psycopg2's ``connection.cancel()`` (the protocol's cancel request; thread-safe)."""
        handle.cancel()

    def row_encoder(self, target_columns: list[sa.Column], source_columns: list[Column]) -> Callable[[tuple], Any]:
        """Rows as COPY text lines (tab-separated, ``\\N`` for NULL, escaped)."""
        fmts = [pg_bit_formatter(t, s) or pg_formatter(kind_of(t.type)) for t, s in zip(target_columns, source_columns)]

        def encode(row: tuple) -> str:
            return "\t".join([PG_NULL if v is None else f(v) for v, f in zip(row, fmts)])
        # MariaDB zero dates / TIME beyond a day first (their own messages), then exactness
        return with_source_checks(
            guarded_encoder(encode, target_columns, source_columns, engine="PostgreSQL",
                            allow_rounding=self.allow_rounding, holds_special_text=True),
            target_columns, source_columns, engine="PostgreSQL", time_24h=True)

    def create_written_keys(self, conn: sa.Connection, name: str, target: sa.Table,
                            key: list[str]) -> tuple[sa.TableClause, bool]:
        """UNIQUE on the key (the copied columns keep the destination's collations, so keys compare
        as its unique index compares them): one ``INSERT ... ON CONFLICT DO NOTHING`` per batch both
        checks and records its keys, an index probe per key (see :meth:`claim_keys`)."""
        table = self.create_staging(conn, name, target, key)
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(f"CREATE UNIQUE INDEX {prep.quote(name + '_ux')} ON {prep.format_table(table)} "
                             f"({', '.join(prep.quote(k) for k in key)})")
        return table, True

    def claim_keys(self, conn: sa.Connection, staging: sa.TableClause, written: sa.TableClause,
                   key: list[str]) -> tuple[int, int]:
        """(staged rows, keys added) in one statement; see :func:`build_pg_claim_keys`."""
        rows, added = conn.execute(build_pg_claim_keys(staging, written, key)).one()
        return int(rows), int(added)

    def create_isolation(self, conn: sa.Connection, **kwargs: Any) -> Any:
        """A PL/pgSQL function trying each staged row in a subtransaction (see postgresql_isolate)."""
        return create_isolation(conn, **kwargs)

    def run_isolation(self, conn: sa.Connection, handle: Any, *, columns: list[str],
                      rows: list[Any]) -> list[tuple[int, str | None, int, int]]:
        return run_isolation(conn, handle, columns=columns, rows=rows)

    def null_refusals(self, conn: sa.Connection, target: sa.Table, columns: list[str]) -> list[tuple[int, str]]:
        """NOT NULL columns of a plain table without triggers or rules."""
        return pg_null_refusals(conn, target, columns)

    def clear_staging(self, conn: sa.Connection, staging: sa.TableClause, *, dirty: int = 0) -> bool:
        """TRUNCATE once many rows were staged (temporary tables are not vacuumed, so DELETE alone
        would bloat them); DELETE while few were (row isolation stages one row at a time, and a
        TRUNCATE per row would create and drop a file each time)."""
        table = conn.dialect.identifier_preparer.format_table(staging)
        if dirty > PG_STAGING_DELETE_MAX:
            conn.exec_driver_sql(f"TRUNCATE {table}")
            return True
        conn.exec_driver_sql(f"DELETE FROM {table}")
        return False

    def bulk_insert(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    rows: list[Any]) -> None:
        """``COPY table (cols) FROM STDIN`` with the encoded lines."""
        copy_rows(conn, table, columns, rows)

    def insert_new(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str],
                   key: list[str], staged: int) -> tuple[int, int]:
        """``INSERT ... ON CONFLICT (key) DO NOTHING``: only key conflicts are skipped."""
        inserted = conn.execute(build_pg_insert_new(target, staging, columns, key)).rowcount
        return inserted, staged - inserted

    def upsert(self, conn: sa.Connection, target: sa.Table, staging: sa.TableClause, columns: list[str],
               key: list[str], staged: int) -> tuple[int, int, int]:
        """One statement; RETURNING (xmax = 0) tells inserted from updated rows."""
        if not [c for c in columns if c not in key]:
            inserted, skipped = self.insert_new(conn, target, staging, columns, key, staged)
            return inserted, 0, skipped
        inserted, updated = conn.execute(build_pg_upsert(target, staging, columns, key)).one()
        return inserted, updated, staged - inserted - updated

    def is_row_error(self, exc: BaseException) -> bool:
        """SQLSTATE classes 21 (cardinality), 22 (data), 23 (integrity), 44 (check option), P0 (trigger)."""
        code = getattr(getattr(exc, "orig", exc), "pgcode", None) or ""
        return code[:2] in ("21", "22", "23", "44", "P0")

    def load_error_message(self, exc: BaseException) -> str:
        """Primary message, the detail, and the column named by COPY's context."""
        diag = getattr(getattr(exc, "orig", None), "diag", None)
        if diag is None or not diag.message_primary:
            return super().load_error_message(exc)
        parts = [diag.message_primary]
        column = COPY_COLUMN_RE.search(diag.context or "")
        if column:
            parts.append(f"column {column.group(1)}")
        if diag.message_detail:
            parts.append(diag.message_detail)
        return "; ".join(parts)
