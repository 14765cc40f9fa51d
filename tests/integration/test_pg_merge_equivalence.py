"""PostgreSQL's fast upsert (UPDATE + INSERT in one statement, keys claimed in a UNIQUE table) gives
the same answer as the general one (INSERT ... ON CONFLICT DO UPDATE, keys checked then recorded).

Given one destination and one source (changed, unchanged and new rows, NULLs, JSON, a CHECK that
fails rows in late batches, a unique index on another column, keys repeated within and across
batches, a run of failures long enough to stop the load), when the same batches are loaded once
each way in upsert and sync_delete, through write() and write_bulk(), then the destination rows,
the failed rows (positions and messages), the counts, the stop and the verification are equal.
A table with a trigger keeps the general statement.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

import shared.dialects.postgresql_destination as pg_destination
from shared.connections import create_db_engine
from shared.dialects.destination_side import DestinationSide
from shared.dialects.postgresql_destination import PostgresDestination
from shared.errors import TooManyFailures
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column

pytestmark = pytest.mark.integration

DDL = ("(id bigint PRIMARY KEY, qty int CHECK (qty >= 0), code text UNIQUE, note text, doc jsonb, "
       "at timestamptz)")
COLUMNS = [Column("id", "bigint"), Column("qty", "int"), Column("code", "text"), Column("note", "text"),
           Column("doc", "json"), Column("at", "timestamptz")]
BATCH = 7


def _existing() -> list[str]:
    rows = []
    for i in range(1, 61):
        note = "NULL" if i % 9 == 0 else f"'note {i}'"
        rows.append(f"({i}, {i}, 'c{i}', {note}, '{{\"v\": {i}}}', '2024-01-01 00:00:00+00')")
    rows.append("(500, 1, 'keep', 'not in the source', NULL, NULL)")
    return rows


def _source(stop: bool) -> list[tuple]:
    rows: list[tuple] = []
    for i in range(5, 80):  # 5..60 exist, 61..79 are new
        changed = i % 2 == 0
        note = None if i % 9 == 0 else (f"new {i}" if changed else f"note {i}")
        rows.append((i, i, f"c{i}", note, {"v": i}, "2024-01-01 00:00:00+00"))
    rows[3] = (8, 8, "c8", "first 8", {"v": 8}, None)          # batch 1 ...
    rows.insert(10, (8, 1, "c8", "second 8 (fails)", None, None))  # ... its key again in batch 2
    rows.insert(12, (70, 1, "c70x", "within", None, None))       # 70 comes later too
    rows.insert(13, (70, 2, "c70y", "within again", None, None))
    rows[50] = (rows[50][0], -1, *rows[50][2:])                  # CHECK fails, late batch
    rows[60] = (rows[60][0], 5, "c5", *rows[60][3:])             # unique violation on code
    rows.append((900, 1, "c900", "new", [1, 2], None))
    rows.append((61, 3, "c61b", "61 again (fails)", None, None))  # across batches, last batch
    if stop:
        rows.extend((1000 + i, -5, f"bad{i}", None, None, None) for i in range(105))
        rows.append((2000, 1, "after", None, None, None))
    return rows


def _bulk(row: tuple) -> str:
    import json
    return "\t".join("\\N" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in row)


def _load(url: str, mode: Mode, rows: list[tuple], bulk: bool, fast: bool, monkeypatch) -> dict:
    merges: list[int] = []
    with monkeypatch.context() as m:
        build = pg_destination.build_pg_merge
        m.setattr(pg_destination, "build_pg_merge", lambda *a: merges.append(1) or build(*a))
        if not fast:
            m.setattr(PostgresDestination, "create_written_keys", DestinationSide.create_written_keys)
            m.setattr(PostgresDestination, "_merge_safe", lambda self, conn, target: False)
        engine = create_db_engine(sa.engine.make_url(url))
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS dest")
            conn.exec_driver_sql(f"CREATE TABLE dest {DDL}")
            conn.exec_driver_sql("INSERT INTO dest VALUES " + ", ".join(_existing()))
        session = LoadSession(engine, table="dest", columns=COLUMNS, mode=mode)
        failed, stopped = [], None
        session.begin()
        try:
            for start in range(0, len(rows), BATCH):
                part = rows[start:start + BATCH]
                if bulk:
                    payload = ("\n".join(_bulk(r) for r in part) + "\n").encode()
                    failed += session.write_bulk(payload, len(part), "pg_text")
                else:
                    failed += session.write(part)
            counts = session.finish()
            session.commit()
        except TooManyFailures as exc:
            stopped = (exc.args, [(f.position, f.error) for f in exc.failed_rows])  # type: ignore[attr-defined]
            counts = session.counts
        finally:
            session.close()
        with engine.connect() as conn:
            table = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM dest ORDER BY id").all()]
        engine.dispose()
        assert bool(merges) == fast
        return {"rows": table, "failed": [(f.position, f.error) for f in failed], "counts": counts.to_dict(),
                "stopped": stopped, "verification": _plain(session.verification)}


def _plain(verification: dict) -> dict:
    return {k: v for k, v in verification.items() if k != "seconds"}


@pytest.mark.parametrize("mode", [Mode.upsert, Mode.sync_delete])
@pytest.mark.parametrize("bulk", [False, True])
@pytest.mark.parametrize("stop", [False, True])
def test_fast_merge_gives_the_general_answer(pg_url: str, monkeypatch, mode: Mode, bulk: bool, stop: bool) -> None:
    rows = _source(stop)
    general = _load(pg_url, mode, rows, bulk, False, monkeypatch)
    fast = _load(pg_url, mode, rows, bulk, True, monkeypatch)
    assert fast == general
    assert general["failed"] or general["stopped"]
    if not stop:
        assert general["counts"]["rows_updated"] and general["counts"]["rows_skipped"]
        assert general["counts"]["rows_inserted"] and general["counts"]["rows_failed"] >= 4


def test_a_table_with_a_trigger_keeps_the_on_conflict_statement(pg_url: str) -> None:
    engine = create_db_engine(sa.engine.make_url(pg_url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE dest {DDL}")
        conn.exec_driver_sql("CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$ BEGIN NEW.note := upper(NEW.note); RETURN NEW; END $$")
        conn.exec_driver_sql("CREATE TRIGGER t BEFORE INSERT ON dest FOR EACH ROW EXECUTE FUNCTION up()")
        conn.exec_driver_sql("INSERT INTO dest VALUES (1, 1, 'a', 'x', NULL, NULL)")
        safe = PostgresDestination()._merge_safe(conn, sa.Table("dest", sa.MetaData(), autoload_with=conn))
    assert safe is False
    session = LoadSession(engine, table="dest", columns=COLUMNS, mode=Mode.upsert)
    session.begin()
    session.write([(1, 1, "a", "y", None, None), (2, 2, "b", "z", None, None)])
    counts = session.finish()
    session.commit()
    session.close()
    with engine.connect() as conn:
        notes = conn.exec_driver_sql("SELECT note FROM dest ORDER BY id").scalars().all()
    engine.dispose()
    assert notes == ["Y", "Z"]  # ON CONFLICT fires BEFORE INSERT for the existing key too
    assert (counts.rows_inserted, counts.rows_updated) == (1, 1)


@pytest.mark.parametrize("setup", [
    "CREATE TRIGGER t BEFORE INSERT ON dest FOR EACH ROW EXECUTE FUNCTION up()",
    "CREATE RULE r AS ON INSERT TO dest WHERE NEW.qty = 7 DO INSTEAD NOTHING",
    "ALTER TABLE dest ENABLE ROW LEVEL SECURITY",
    "CREATE TABLE child () INHERITS (dest)",
    'CREATE UNIQUE INDEX ON dest (note COLLATE "C")',
    "CREATE UNIQUE INDEX ON dest (note text_pattern_ops)",
    "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false); "
    "ALTER TABLE dest ALTER COLUMN note TYPE text COLLATE ci",
])
def test_tables_where_the_merge_would_mean_something_else_keep_on_conflict(pg_url: str, setup: str) -> None:
    engine = create_db_engine(sa.engine.make_url(pg_url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE dest {DDL}")
        conn.exec_driver_sql("CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
        target = sa.Table("dest", sa.MetaData(), autoload_with=conn)
        assert PostgresDestination()._merge_safe(conn, target) is True
        conn.exec_driver_sql(setup)
        safe = PostgresDestination()._merge_safe(conn, target)
    engine.dispose()
    # "C" is deterministic: a unique index under it still compares as a join does
    assert safe is ('COLLATE "C"' in setup)


def test_a_new_row_taking_a_unique_value_an_existing_row_gives_up_later_fails_as_with_on_conflict(
        pg_url: str, monkeypatch) -> None:
    """Source order: the new row 2 wants code 'y' before row 1 gives 'y' up. ON CONFLICT applies rows
    in source order (2 fails); the merge inserts before it updates, so it fails the batch and
    isolation reaches the same answer; updating first would wrongly write both rows."""
    rows = [(2, 1, "y", "new", None, None), (1, 1, "z", "gives y up", None, None)]
    results = []
    for fast in (False, True):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(PostgresDestination, "_merge_safe", lambda self, conn, target: False)
            engine = create_db_engine(sa.engine.make_url(pg_url))
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS dest")
                conn.exec_driver_sql(f"CREATE TABLE dest {DDL}")
                conn.exec_driver_sql("INSERT INTO dest VALUES (1, 1, 'y', 'old', NULL, NULL)")
            session = LoadSession(engine, table="dest", columns=COLUMNS, mode=Mode.upsert)
            session.begin()
            failed = [(f.position, f.error) for f in session.write(rows)]
            counts = session.finish().to_dict()
            session.commit()
            session.close()
            with engine.connect() as conn:
                table = [tuple(r) for r in conn.exec_driver_sql("SELECT id, code FROM dest ORDER BY id").all()]
            engine.dispose()
            results.append((table, failed, counts))
    assert results[1] == results[0]
    assert results[0][0] == [(1, "z")] and [p for p, _ in results[0][1]] == [1]
