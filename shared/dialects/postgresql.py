"""PostgreSQL: engine facts and engine-specific operations (see ``base.py``)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import sqlalchemy as sa

from shared.dialects.base import Dialect
from shared.types import Column


class PostgresDialect(Dialect):
    """PostgreSQL."""

    name = "postgresql"

    # --- EXTRACTION ---
    # (owned by shared/extract; methods added here by the extract engineer)
    # Values: JSON/JSONB and arrays come back as their text form (``'{1,2}'``), enums and
    # other types without a psycopg2 caster as text; bytea as bytes.
    sql_flavor = "postgresql"
    EXTRACT_TYPES = {
        16: "bool", 21: "smallint", 23: "int", 20: "bigint", 26: "bigint", 700: "float", 701: "float",
        1700: "decimal", 25: "text", 1043: "text", 1042: "text", 19: "text", 17: "bytes", 1082: "date",
        1083: "time", 1266: "timetz", 1114: "timestamp", 1184: "timestamptz", 2950: "uuid", 114: "json",
        3802: "json", 1186: "interval",
    }

    def prepare_source_session(self, dbapi_conn: Any) -> None:
        """JSON, JSONB and every array type as text; infinite dates, ``24:00`` and month intervals
        kept (:mod:`shared.dialects.postgresql_values`); the output settings the conversions rely on
        (exact floats, ISO dates, ``postgres`` intervals), over any user option or server default."""
        import psycopg2.extensions as ext

        from shared.dialects.postgresql_values import SOURCE_SETTINGS, register_exact_casters

        def as_text(value: Any, _cur: Any) -> Any:
            return value

        oids = [114, 3802] + [oid for oid, c in ext.string_types.items() if c.name.endswith("ARRAY")]
        ext.register_type(ext.new_type(tuple(oids), "DM_AS_TEXT", as_text), dbapi_conn)
        register_exact_casters(dbapi_conn)
        cur = dbapi_conn.cursor()
        cur.execute(SOURCE_SETTINGS)
        cur.close()

    def drop_privileges(self, dbapi_conn: Any, role: str | None) -> None:
        """``SET ROLE read_role``: the step's privileges are checked as that role."""
        if role:
            from psycopg2 import sql
            cur = dbapi_conn.cursor()
            cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            cur.close()

    def source_privileges(self, dbapi_conn: Any, *, project_id: int) -> Any:
        """Superuser, CREATEROLE, pg_write/read_server_files, pg_execute_server_program,
        pg_signal_backend, CREATE on the database or a schema, write on a table."""
        from shared.dialects.privileges import pg_source_risks
        from shared.privileges import SourcePrivileges
        role, risky = pg_source_risks(dbapi_conn)
        return SourcePrivileges(project_id=project_id, engine=self.name, role=role, risky=risky)

    def begin_read_only(self, dbapi_conn: Any, *, timeout_s: float | None) -> None:
        """Session and transaction read-only; ``statement_timeout`` local to the transaction."""
        cur = dbapi_conn.cursor()
        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_conn.commit()
        cur.execute("SET TRANSACTION READ ONLY")
        if timeout_s:
            cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(max(1, int(timeout_s * 1000))),))
        cur.close()

    def open_stream(self, dbapi_conn: Any, sql: str) -> Any:
        """A server-side cursor opened by the server from ``sql`` as ONE statement.

        psycopg2 speaks the simple query protocol, where a string holding ``;`` runs as
        several statements whatever our tokenizer thought. So ``sql`` travels as a string
        literal (quoted by libpq) inside one ``DO`` block that opens a PL/pgSQL cursor on it:
        the server parses it with its own lexer and refuses, before running anything, a text
        holding more than one statement ("cannot open multi-query plan as cursor") or one that
        returns no rows (``COMMIT``, ``SET ROLE``…). Rows travel ``fetchmany`` by ``fetchmany``
        (``FETCH`` on the open portal).
        """
        import secrets

        name = f"dm_stream_{secrets.token_hex(4)}"
        setup = dbapi_conn.cursor()
        body = setup.mogrify(f"DECLARE c refcursor := '{name}'; BEGIN OPEN c FOR EXECUTE %s; END", (sql,))
        setup.execute(b"DO " + setup.mogrify("%s", (body.decode(),)))
        setup.close()
        return dbapi_conn.cursor(name=name)

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """Portable columns from psycopg2 type OIDs (numeric precision/scale, varchar length)."""
        cols = []
        for d in cursor_description:
            kind = self.EXTRACT_TYPES.get(d.type_code, "unknown")
            typmod_ok = d.precision and 0 < d.precision <= 1000 and 0 <= (d.scale or 0) <= d.precision
            precision = d.precision if kind == "decimal" and typmod_ok else None  # unconstrained numeric: None
            length = d.internal_size if kind == "text" and d.internal_size and d.internal_size > 0 else None
            cols.append(Column(d.name, kind, length=length, precision=precision,
                               scale=d.scale if precision else None))
        return cols

    def result_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """bytea arrives as memoryview: make it bytes."""
        return [bytes if c.type == "bytes" else None for c in columns]

    def cancel_statement(self, dbapi_conn: Any, cursor: Any, engine: sa.Engine) -> None:
        """``PQcancel`` (what ``pg_cancel_backend`` does), safe from another thread."""
        dbapi_conn.cancel()

    def classify_error(self, exc: BaseException) -> str:
        """By SQLSTATE; a driver error without one (refused, reset) is a lost connection."""
        import psycopg2

        code = getattr(exc, "pgcode", None)
        if code == "57014":
            return "timeout"
        if code == "25006":
            return "read_only"
        if code and (code.startswith("08") or code.startswith("57P")):
            return "connection"
        if code is None and isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
            # refused by the server at start-up (wrong password, unknown role or database) is the
            # source's problem; refused, reset or timed out is the connection's (see classify)
            return "connection" if self.is_transient(exc) else "source"
        return "source"

    def bulk_export_sql(self, sql: str, columns: list[Column], fmt: str) -> str | None:
        """``COPY (sql) TO STDOUT`` in COPY text (``pg_text``) or, for ``mysql_csv``, as quoted CSV
        with booleans as 1/0, aware timestamps as UTC and bytea as hex."""
        return pg_export_sql(sql, columns, fmt)

    def bulk_export(self, dbapi_conn: Any, sql: str, *, chunk_bytes: int,
                    max_rows: int) -> Iterable[tuple[bytes, int]]:
        """The COPY on a helper thread, in chunks (output styles fixed for this transaction)."""
        from shared.dialects.bulkstream import copy_out_chunks

        cur = dbapi_conn.cursor()
        cur.execute("SET LOCAL DateStyle = 'ISO'; SET LOCAL IntervalStyle = 'postgres'; "
                    "SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'")
        return copy_out_chunks(lambda sink: cur.copy_expert(sql, sink), dbapi_conn.cancel, chunk_bytes, max_rows)

    def temp_column_type(self, col: Column) -> sa.types.TypeEngine:
        """An unconstrained NUMERIC for a decimal of unknown size; otherwise :func:`to_sqlalchemy`."""
        if col.type == "decimal" and not col.precision:
            return sa.Numeric(asdecimal=True)
        return super().temp_column_type(col)

    def load_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """Text forms COPY's CSV input accepts (bytea hex, interval in units)."""
        from shared.dialects.postgresql_values import interval_text

        def interval(td: Any) -> str:
            return td if isinstance(td, str) else interval_text(td)  # text: a month interval, kept

        special = {"bytes": lambda b: "\\x" + bytes(b).hex(), "interval": interval,
                   "bool": lambda v: "t" if v else "f"}
        return [special.get(c.type) for c in columns]

    def bulk_load_temp(self, dbapi_conn: Any, sa_dialect: sa.Dialect, name: str, columns: list[Column],
                       batches: Iterable[list[tuple]]) -> int:
        """``COPY name (cols) FROM STDIN`` in CSV, streamed from ``batches``; returns the row count."""
        from shared.dialects.csvstream import CsvStream

        from shared.dialects.loading import plain_preparer

        stream = CsvStream(batches, self.load_converters(columns))
        quote = plain_preparer(sa_dialect).quote_identifier  # copy_expert binds no parameters
        cols = ", ".join(quote(c.name) for c in columns)
        cur = dbapi_conn.cursor()
        cur.copy_expert(f"COPY {quote(name)} ({cols}) FROM STDIN WITH (FORMAT csv)",
                        stream, size=256 * 1024)
        cur.close()
        return stream.rows

    # --- LOADING ---
    # (owned by shared/load) COPY into a session temporary staging table, then one
    # set-based statement per batch: INSERT ... ON CONFLICT (key) with an IS DISTINCT FROM
    # guard, so unchanged rows are not rewritten. Plain inserts COPY straight into the
    # destination. Sessions run with TimeZone=UTC (a naive value into timestamptz is UTC).
    server_isolation = True

    bulk_import_format = "pg_text"

    def bulk_import(self, conn: sa.Connection, table: sa.TableClause | sa.Table, columns: list[str],
                    payload: bytes, *, kinds: list[str], rows: int) -> None:
        """``COPY table (cols) FROM STDIN`` with the payload as it came (COPY text)."""
        copy_payload(conn, table, columns, payload)

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


# --- LOADING (module helpers) ---
from shared.dialects.exact import guarded_encoder  # noqa: E402
from shared.dialects.loading import kind_of  # noqa: E402
from shared.dialects.sourcevalues import pg_bit_formatter, with_source_checks  # noqa: E402
from shared.dialects.postgresql_load import (  # noqa: E402
    COPY_COLUMN_RE, PG_NULL, PG_TRANSIENT, pg_formatter, build_pg_insert_new, build_pg_upsert, copy_payload,
    copy_rows, pg_export_sql, pg_null_refusals,
)
from shared.dialects.postgresql_isolate import create_isolation, run_isolation  # noqa: E402

PG_STAGING_DELETE_MAX = 256
