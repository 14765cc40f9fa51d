"""PostgreSQL, the source side (see ``source_side.py``): read-only sessions, result types from type
OIDs, server-side cursors, ``COPY ... TO STDOUT`` for the fast path, ``COPY`` into ``@resultN`` tables.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import sqlalchemy as sa

from shared.dialects.postgresql_load import pg_export_sql
from shared.dialects.source_side import SourceSide
from shared.dialects.sqlrules import SqlRules
from shared.types import Column


class PostgresSource(SourceSide):
    """PostgreSQL as a source."""

    # Values: JSON/JSONB and arrays come back as their text form (``'{1,2}'``), enums and
    # other types without a psycopg2 caster as text; bytea as bytes.
    sql_flavor = "postgresql"
    sql_rules = SqlRules(nested_comments=True, dollar_quotes=True)

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
        from shared.dialects.postgresql_values import SOURCE_SETTINGS, register_source_casters

        register_source_casters(dbapi_conn)
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

    def binary_export(self, sql: str, description: Any,
                      into: dict[str, tuple[int, int] | None]) -> tuple[str, str] | None:
        """``(format, COPY … (FORMAT binary))`` when every result column (psycopg2 ``description``)
        reaches the destination column of its name (``into``: lower-case name → OID, typmod)
        exactly in binary form (:mod:`shared.dialects.pgbinary`); otherwise None."""
        from shared.dialects import pgbinary

        types = pgbinary.source_types(description)
        if not pgbinary.carries(types, [into.get(d.name.lower()) for d in description]):
            return None
        return pgbinary.format_for(types), f"COPY (\n{sql}\n) TO STDOUT (FORMAT binary)"

    def bulk_export(self, dbapi_conn: Any, sql: str, *, chunk_bytes: int, max_rows: int,
                    binary: bool = False) -> Iterable[tuple[bytes, int]]:
        """The COPY on a helper thread, in chunks (output styles fixed for this transaction);
        ``binary``: rows of a binary COPY, without the stream's header and trailer."""
        from shared.dialects.bulkstream import copy_out_chunks

        cur = dbapi_conn.cursor()
        cur.execute("SET LOCAL DateStyle = 'ISO'; SET LOCAL IntervalStyle = 'postgres'; "
                    "SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'")
        return copy_out_chunks(lambda sink: cur.copy_expert(sql, sink), dbapi_conn.cancel, chunk_bytes, max_rows,
                               binary=binary)

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
