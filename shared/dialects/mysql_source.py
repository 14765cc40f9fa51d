"""MySQL and MariaDB, the source side (see ``source_side.py``): read-only sessions, types from the
field packets, unbuffered cursors, the server-built bulk export (``mysql_bulk.py``), exact FLOAT reads
(``mysql_read.py``) and ``@resultN`` temporary tables.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import sqlalchemy as sa

from shared.dialects.loading import plain_preparer
from shared.dialects.mysql_bulk import abandon_stream, mysql_export_chunks, mysql_export_sql
from shared.dialects.mysql_load import mysql_temp_decimals
from shared.dialects.mysql_read import FLOAT4_PRECISION, float_read_sql, setup_source_session
from shared.dialects.source_side import SourceSide
from shared.dialects.sqlrules import SqlRules
from shared.types import Column


class MySQLSource(SourceSide):
    """MySQL and MariaDB as a source."""

    # Values: JSON as text; TINYINT(1)/BOOLEAN stays an int (MySQL cannot tell it from a
    # small number); TIME becomes ``datetime.time`` when within 00:00..24:00, otherwise it
    # stays a ``timedelta``; SET as its text; zero and invalid dates as their text ('0000-00-00');
    # FLOAT read as DOUBLE (exact); BIT(n) as bytes; sessions in UTC (mysql_read.py).
    sql_flavor = "mysql"
    sql_rules = SqlRules(backslash_escapes=True, double_quote_strings=True, hash_comments=True,
                         executable_comments=True, digit_identifiers=True, select_into_writes=True)

    EXTRACT_TYPES = {
        0: "decimal", 246: "decimal", 1: "smallint", 2: "smallint", 9: "int", 3: "int", 8: "bigint",
        4: "float", 5: "float", 7: "timestamp", 12: "timestamp", 10: "date", 14: "date", 11: "time",
        13: "smallint", 245: "json", 16: "bytes", 255: "bytes", 6: "unknown",
    }

    BINARY_CHARSET = 63

    UNSIGNED_FLAG = 32

    TIMEOUT_CODES = (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time

    CONNECTION_CODES = (2003, 2006, 2013, 2055, 1053, 1152, 1927)

    def prepare_source_session(self, dbapi_conn: Any) -> None:
        """SET columns as text; zero and invalid dates stay the text the server sent
        ('0000-00-00'); dates storable in temporary tables; UTC, set last (see mysql_read)."""
        from pymysql.constants import FIELD_TYPE

        from pymysql.constants.CLIENT import MULTI_STATEMENTS

        if dbapi_conn.client_flag & MULTI_STATEMENTS:  # one statement per request: the server enforces it
            from shared.errors import ConfigError
            raise ConfigError("the project's options enable multiple statements (client_flag); sources refuse them")
        dec = dbapi_conn.decoders
        dec[FIELD_TYPE.SET] = lambda raw: raw.decode() if isinstance(raw, bytes) else raw
        setup_source_session(dbapi_conn)

    rewrites_reads = True

    def read_sql(self, dbapi_conn: Any, sql: str, columns: list[Column]) -> str | None:
        """FLOAT columns read as DOUBLE, exactly (see :func:`float_read_sql`); None: run ``sql`` as it is."""
        wrapped = float_read_sql(sql, columns)
        if wrapped is None:
            return None
        if wrapped[1]:  # keep an ORDER BY: materialise the derived table instead of merging it
            cur = dbapi_conn.cursor()
            cur.execute("SET SESSION optimizer_switch = 'derived_merge=off'")
            cur.close()
        return wrapped[0]

    def source_privileges(self, dbapi_conn: Any, *, project_id: int) -> Any:
        """SUPER, FILE and grants that write (INSERT…, CREATE…, EXECUTE: a procedure may commit)."""
        from shared.dialects.privileges import mysql_source_risks
        from shared.privileges import SourcePrivileges
        role, risky = mysql_source_risks(dbapi_conn)
        return SourcePrivileges(project_id=project_id, engine=self.name, role=role, risky=risky)

    def begin_read_only(self, dbapi_conn: Any, *, timeout_s: float | None) -> None:
        """Session default and this transaction read-only; a per-statement time limit."""
        cur = dbapi_conn.cursor()
        cur.execute("SET SESSION TRANSACTION READ ONLY")
        if timeout_s and "mariadb" in dbapi_conn.get_server_info().lower():
            cur.execute("SET SESSION max_statement_time = %s", (float(timeout_s),))
        elif timeout_s:
            cur.execute("SET SESSION max_execution_time = %s", (max(1, int(timeout_s * 1000)),))
        dbapi_conn.commit()
        cur.execute("START TRANSACTION READ ONLY")
        cur.close()

    def open_stream(self, dbapi_conn: Any, sql: str) -> Any:
        """An unbuffered ``SSCursor``: rows are read from the socket as they are fetched."""
        import pymysql.cursors

        cursor = dbapi_conn.cursor(pymysql.cursors.SSCursor)
        cursor.execute(sql)
        return cursor

    def describe_cursor(self, cursor: Any, sample_rows: list[tuple]) -> list[Column]:
        """From pymysql's field packets: type code, binary charset, unsigned flag, DECIMAL size."""
        result = getattr(cursor, "_result", None)
        fields = getattr(result, "fields", None) or []
        return [self._column(f) for f in fields] or self.describe_result(list(cursor.description or []), sample_rows)

    def _column(self, f: Any) -> Column:
        kind = self.EXTRACT_TYPES.get(f.type_code)
        unsigned = bool(f.flags & self.UNSIGNED_FLAG)
        if f.type_code == 4:  # FLOAT: float4, read exactly through read_sql / the bulk export
            return Column(f.name, "float", precision=FLOAT4_PRECISION)
        if f.type_code == 16:  # BIT(n): bytes; length = n bits
            return Column(f.name, "bytes", length=f.length or None)
        if kind is None:  # strings, blobs, enum, set
            kind = "bytes" if f.charsetnr == self.BINARY_CHARSET else "text"
        elif unsigned and kind in ("smallint", "int", "bigint"):
            kind = {"smallint": "int", "int": "bigint", "bigint": "decimal"}[kind]
            if kind == "decimal":
                return Column(f.name, kind, precision=20, scale=0)
        if kind == "decimal" and f.type_code in (0, 246):
            precision = f.length - (1 if f.scale else 0) - (0 if unsigned else 1)
            return Column(f.name, kind, precision=max(precision, 1), scale=f.scale)
        return Column(f.name, kind)

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """From DB-API descriptions only (no charset): text vs bytes is unknown, so text."""
        return [Column(d[0], self.EXTRACT_TYPES.get(d[1], "text")) for d in cursor_description]

    def result_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """TIME arrives as timedelta: a time of day when it fits."""
        from datetime import time, timedelta

        def time_of_day(td: Any) -> Any:
            if isinstance(td, timedelta) and timedelta(0) <= td < timedelta(days=1):
                return time(td.seconds // 3600, td.seconds // 60 % 60, td.seconds % 60, td.microseconds)
            return td

        return [time_of_day if c.type == "time" else None for c in columns]

    def abandon_stream(self, cursor: Any) -> None:
        """Never read the rest of an unbuffered result (pymysql would, on close)."""
        abandon_stream(cursor)

    def cancel_statement(self, dbapi_conn: Any, cursor: Any, engine: sa.Engine) -> None:
        """``KILL QUERY`` for the session's thread id, from a second connection."""
        with engine.connect() as conn:
            conn.exec_driver_sql("KILL QUERY %s", (dbapi_conn.thread_id(),))

    def classify_error(self, exc: BaseException) -> str:
        """By MySQL error number (the first argument of pymysql's errors)."""
        import pymysql

        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code == 1317:
            return "cancelled"
        if code in self.TIMEOUT_CODES:
            return "timeout"
        if code == 1792:
            return "read_only"
        if code in self.CONNECTION_CODES or isinstance(exc, pymysql.err.InterfaceError):
            return "connection"
        return "source"

    def bulk_export_sql(self, sql: str, columns: list[Column], fmt: str) -> str | None:
        """``pg_text`` built by the server (CONCAT_WS of escaped values), one string per row.

        Not for a query with ORDER BY: MariaDB may ignore the order inside the derived
        table this needs, and the general path keeps it.
        """
        return mysql_export_sql(sql, columns, fmt)

    def bulk_export(self, dbapi_conn: Any, sql: str, *, chunk_bytes: int,
                    max_rows: int) -> Iterable[tuple[bytes, int]]:
        """Rows of one undecoded string each, streamed (``SSCursor``) and joined into chunks, read on
        a helper thread while the previous chunk is published."""
        from shared.dialects.bulkstream import read_ahead

        return read_ahead(lambda: mysql_export_chunks(dbapi_conn, sql, chunk_bytes, max_rows))

    def temp_column_type(self, col: Column) -> sa.types.TypeEngine:
        """UUID as CHAR(36), intervals as TIME(6); everything else as :func:`to_sqlalchemy`."""
        from sqlalchemy.dialects import mysql

        if col.type == "uuid":
            return sa.CHAR(36)
        if col.type == "interval":
            return mysql.TIME(fsp=6)
        if col.type in ("timestamp", "timestamptz"):
            return mysql.DATETIME(fsp=6)
        if col.type == "time":
            return mysql.TIME(fsp=6)
        if col.type == "decimal" and col.precision:  # MySQL: at most DECIMAL(65, 30)
            scale = min(col.scale or 0, 30)
            return sa.Numeric(min(max(col.precision, scale), 65), scale, asdecimal=True)
        return super().temp_column_type(col)

    def load_converters(self, columns: list[Column]) -> list[Callable[[Any], Any] | None]:
        """UUID as text, aware timestamps as naive UTC (MySQL DATETIME has no zone)."""
        from datetime import timezone

        def utc(v: Any) -> Any:
            return v.astimezone(timezone.utc).replace(tzinfo=None) if getattr(v, "tzinfo", None) else v

        def no_offset(v: Any) -> Any:
            if getattr(v, "utcoffset", lambda: None)() is not None:
                raise ValueError(f"a MariaDB TIME cannot hold the offset of {v.isoformat()}")
            return v

        special = {"uuid": str, "timestamptz": utc, "timetz": no_offset}
        return [special.get(c.type) for c in columns]

    def bulk_load_temp(self, dbapi_conn: Any, sa_dialect: sa.Dialect, name: str, columns: list[Column],
                       batches: Iterable[list[tuple]]) -> int:
        """As the default, with decimals checked against the temporary column (no silent rounding) and
        a decimal of unknown scale narrowed afterwards to the scale its values need."""
        places: dict[int, int] = {}
        watched = mysql_temp_decimals(columns, [self.temp_column_type(c) for c in columns], batches, places)
        total = super().bulk_load_temp(dbapi_conn, sa_dialect, name, columns, watched)
        quote = plain_preparer(sa_dialect).quote_identifier
        narrow = [f"MODIFY {quote(columns[i].name)} DECIMAL({35 + p}, {p})" for i, p in places.items()
                  if not columns[i].precision]
        if narrow:
            cur = dbapi_conn.cursor()
            cur.execute(f"ALTER TABLE {quote(name)} {', '.join(narrow)}")
            cur.close()
        return total
