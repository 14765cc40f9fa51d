"""MariaDB row isolation on the server: one compound statement tries every staged row on its own.

The batch goes once into a temporary table with an AUTO_INCREMENT position; an anonymous
``BEGIN NOT ATOMIC … END`` block walks the positions in order and applies the mode's
statement to one row at a time. InnoDB undoes a failed statement by itself, so a CONTINUE
handler records the error (``(errno) message``, as the client path reports it) and the
loop goes on. Results land in a second temporary table, read with one SELECT.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from shared.dialects.loading import build_staging_select, compile_sql, key_match, temp_table

_BLOCK = """BEGIN NOT ATOMIC
  DECLARE n BIGINT DEFAULT 0; DECLARE failed INT DEFAULT 0; DECLARE m TEXT; DECLARE c INT;
  DECLARE k TEXT; DECLARE matched BIGINT; DECLARE rc BIGINT;
  DECLARE CONTINUE HANDLER FOR SQLEXCEPTION
    BEGIN GET DIAGNOSTICS CONDITION 1 m = MESSAGE_TEXT, c = MYSQL_ERRNO; SET failed = 1; END;
  DELETE FROM {results};
  FOR r IN (SELECT dm_pos FROM {rows} ORDER BY dm_pos) DO
    SET n = n + 1, failed = 0, k = NULL, matched = 0, rc = 0;
    {check}
    IF k IS NOT NULL THEN
      INSERT INTO {results} VALUES (n, k, 0, 0);
    ELSE
      {matched}
      {apply}
      SET rc = ROW_COUNT();
      IF failed = 1 THEN
        INSERT INTO {results} VALUES (n, CONCAT('(', c, ') ', REGEXP_REPLACE(m, ' at row [0-9]+$', '')), 0, 0);
      ELSE
        {record}
        INSERT INTO {results} VALUES (n, NULL, {inserted}, {updated});
      END IF;
    END IF;
    {seen}
  END FOR;
END"""


def create_mysql_isolation(conn: sa.Connection, *, token: str, staging: sa.TableClause, target: sa.Table,
                           columns: list[str], key: list[str], mode: str, written: sa.TableClause | None,
                           seen: sa.TableClause | None) -> str:
    """Create the positioned rows table and the results table; returns the block to run."""
    prep, dialect = conn.dialect.identifier_preparer, conn.dialect
    rows_name, results_name = f"dm_isorows_{token}", f"dm_isores_{token}"
    select = compile_sql(build_staging_select(target, columns), dialect)
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {prep.quote(rows_name)} "
                         f"(dm_pos BIGINT AUTO_INCREMENT PRIMARY KEY) AS {select}")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {prep.quote(results_name)} "
                         "(pos BIGINT, err TEXT, ins BIGINT, upd BIGINT)")
    rows = sa.table(rows_name, *[sa.column(c) for c in columns], sa.column("dm_pos"))
    one = sa.select(*[rows.c[c] for c in columns]).where(rows.c.dm_pos == sa.literal_column("r.dm_pos"))

    def sql(stmt: sa.ClauseElement) -> str:
        return compile_sql(stmt, dialect)

    updates = [c for c in columns if c not in key]
    matched = inserted = updated = check = record = seen_sql = ""
    if key:
        match = key_match(rows, target, key)
        matched = (f"SELECT COUNT(*) INTO matched FROM {prep.format_table(target)} JOIN {prep.quote(rows_name)} "
                   f"ON {sql(match)} WHERE {prep.quote(rows_name)}.dm_pos = r.dm_pos;")
    if mode in ("upsert", "sync_delete") and updates:
        stmt = mysql.insert(target).from_select(columns, one).on_duplicate_key_update({c: rows.c[c] for c in updates})
        inserted, updated = "1 - matched", "IF(rc = 2, 1, 0)"
    elif key:
        existing = target.alias("dm_existing")
        stmt = sa.insert(target).from_select(columns, one.where(~sa.exists().where(key_match(existing, rows, key))))
        inserted, updated = "rc", "0"
    else:
        stmt = sa.insert(target).from_select(columns, one)
        inserted, updated = "rc", "0"
    if written is not None:
        match = " AND ".join(f"o.{prep.quote(k)} = w.{prep.quote(k)}" for k in key)
        mine = ", ', ', ".join(f"QUOTE(o.{prep.quote(k)})" for k in key)
        theirs = ", ', ', ".join(f"QUOTE(w.{prep.quote(k)})" for k in key)
        check = (f"SELECT CONCAT('duplicate key ({', '.join(key)})=(', {mine}, '): an earlier source row of this "
                 f"execution already wrote the key (', {theirs}, ')') INTO k FROM {prep.quote(rows_name)} o "
                 f"JOIN {prep.format_table(written)} w ON {match} WHERE o.dm_pos = r.dm_pos LIMIT 1;")
        record = _record(prep, written, rows_name, key)
    if seen is not None:
        seen_sql = _record(prep, seen, rows_name, key)
    return _BLOCK.format(results=prep.quote(results_name), rows=prep.quote(rows_name), check=check,
                         matched=matched, apply=sql(stmt) + ";", record=record, seen=seen_sql,
                         inserted=inserted, updated=updated) + f"\n-- {rows_name} {results_name}"


def _record(prep, table: sa.TableClause, rows_name: str, key: list[str]) -> str:
    cols = ", ".join(prep.quote(k) for k in key)
    return (f"INSERT INTO {prep.format_table(table)} ({cols}) SELECT {cols} FROM {prep.quote(rows_name)} "
            "WHERE dm_pos = r.dm_pos;")


def run_mysql_isolation(conn: sa.Connection, handle: str, *, columns: list[str], rows: list[tuple],
                        allow_rounding: bool = False) -> list[tuple[int, str | None, int, int]]:
    """Stage ``rows`` (encoded) in order and run the block; (position, error, inserted, updated) per row.

    The rows are staged with their warnings and notes read back (a value changed on the way into
    the typed rows table, e.g. a datetime cut to a DATE, raises a row-level DBAPIError): the
    caller then isolates on the client, where each row's own insert is checked the same way."""
    from shared.dialects.mysql_load import mysql_insert_checked

    rows_name, results_name = handle.rsplit("\n-- ", 1)[1].split()
    prep = conn.dialect.identifier_preparer
    table = temp_table(rows_name, columns)
    conn.exec_driver_sql(f"DELETE FROM {prep.quote(rows_name)}")
    mysql_insert_checked(conn, table, columns, rows, allow_rounding=allow_rounding)
    conn.exec_driver_sql(handle)
    return [tuple(r) for r in conn.exec_driver_sql(f"SELECT pos, err, ins, upd FROM {prep.quote(results_name)} "
                                                   "ORDER BY pos").all()]
