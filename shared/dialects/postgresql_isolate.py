"""PostgreSQL row isolation on the server: one statement tries every staged row on its own.

When most rows of a batch are bad, trying them one by one from the client costs several
round trips per row (SAVEPOINT, staging, the mode statement, RELEASE). Instead the batch is
staged once and a PL/pgSQL function (created per load session in ``pg_temp``) walks the
staged rows in order, applying the mode's own statement to each row inside a
``BEGIN … EXCEPTION`` block (a subtransaction, released at once). A view over staging shows
the one current row (its ``ctid`` in the transaction-local setting ``dm.tid``), so the
per-row statement is exactly the set-based one. Returns one result row per staged row:
``(position, error, inserted, updated)``.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from shared.dialects.loading import build_record_seen, compile_sql, temp_table
from shared.dialects.postgresql_load import build_pg_insert_new, build_pg_upsert, copy_rows

_FUNCTION = """CREATE FUNCTION pg_temp.{name}() RETURNS TABLE(pos bigint, err text, ins bigint, upd bigint)
LANGUAGE plpgsql AS $dm$
DECLARE
  r record; n bigint := 0; a bigint; b bigint; m text; d text; k text;
BEGIN
  FOR r IN SELECT ctid AS t FROM {staging} ORDER BY ctid LOOP
    n := n + 1;
    PERFORM set_config('dm.tid', r.t::text, true);
    BEGIN
      a := 0; b := 0; k := NULL;
      {check}
      IF k IS NOT NULL THEN
        pos := n; err := k; ins := 0; upd := 0; RETURN NEXT;
      ELSE
        {apply}
        {record}
        pos := n; err := NULL; ins := a; upd := b; RETURN NEXT;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
      pos := n; err := m || CASE WHEN coalesce(d, '') <> '' THEN '; ' || d ELSE '' END; ins := 0; upd := 0;
      RETURN NEXT;
    END;
    {seen}
  END LOOP;
END $dm$"""


def create_isolation(conn: sa.Connection, *, token: str, staging: sa.TableClause, target: sa.Table,
                     columns: list[str], key: list[str], mode: str, written: sa.TableClause | None,
                     seen: sa.TableClause | None) -> tuple[str, sa.TableClause]:
    """Create the view and the function for one session; returns (function name, staging)."""
    prep, dialect = conn.dialect.identifier_preparer, conn.dialect
    view = f"dm_one_{token}"
    conn.exec_driver_sql(f"CREATE TEMP VIEW {prep.quote(view)} AS SELECT * FROM {prep.format_table(staging)} "
                         "WHERE ctid = current_setting('dm.tid')::tid")
    one = temp_table(view, columns)

    def sql(stmt: sa.ClauseElement) -> str:
        return compile_sql(stmt, dialect)

    if mode in ("upsert", "sync_delete") and [c for c in columns if c not in key]:
        apply = f"{sql(build_pg_upsert(target, one, columns, key))} INTO a, b;"  # PL/pgSQL takes INTO anywhere
    elif key:
        apply = f"{sql(build_pg_insert_new(target, one, columns, key))}; GET DIAGNOSTICS a = ROW_COUNT;"
    else:
        insert = pg.insert(target).from_select(columns, sa.select(*[one.c[c] for c in columns]))
        apply = f"{sql(insert)}; GET DIAGNOSTICS a = ROW_COUNT;"
    check = record = seen_sql = ""
    if written is not None:
        names = ", ".join(key)
        mine = " || ', ' || ".join(f"quote_literal(o.{prep.quote(k)}::text)" for k in key)
        theirs = " || ', ' || ".join(f"quote_literal(w.{prep.quote(k)}::text)" for k in key)
        match = " AND ".join(f"o.{prep.quote(k)} = w.{prep.quote(k)}" for k in key)
        check = (f"SELECT 'duplicate key ({names})=(' || {mine} || '): an earlier source row of this execution "
                 f"already wrote the key (' || {theirs} || ')' INTO k FROM {prep.quote(view)} o CROSS JOIN LATERAL "
                 f"(SELECT * FROM {prep.format_table(written)} w WHERE {match} LIMIT 1) w;")  # an index lookup
        record = f"{sql(build_record_seen(written, one, key))};"
    if seen is not None:  # a failed row still counts as present
        seen_sql = f"{sql(build_record_seen(seen, one, key))};"
    name = f"dm_isolate_{token}"
    conn.exec_driver_sql(_FUNCTION.format(name=name, staging=prep.format_table(staging), check=check, apply=apply,
                                          record=record, seen=seen_sql))
    return name, staging


def run_isolation(conn: sa.Connection, handle: tuple[str, sa.TableClause], *, columns: list[str],
                  rows: list[str]) -> list[tuple[int, str | None, int, int]]:
    """Stage ``rows`` (COPY lines) and try each: (1-based position, error or None, inserted, updated)."""
    name, staging = handle
    conn.exec_driver_sql(f"TRUNCATE {conn.dialect.identifier_preparer.format_table(staging)}")  # rows stay in order
    copy_rows(conn, staging, columns, rows)
    return [tuple(r) for r in conn.exec_driver_sql(f"SELECT pos, err, ins, upd FROM pg_temp.{name}()").all()]
