"""PostgreSQL's one-statement key claim (a UNIQUE written-keys table, ``INSERT ... ON CONFLICT DO
NOTHING`` per batch) gives the same answer as the general check (count and join against a plain key
table, then record the keys) that MariaDB and SQLite keep.

Given one destination and one source (changed, unchanged and new rows, NULLs, JSON, a CHECK that
fails rows in late batches, a unique index on another column, keys repeated within and across
batches, a run of failures long enough to stop the load), when the same batches are loaded once
each way in upsert and sync_delete, through write() and write_bulk(), then the destination rows,
the failed rows (positions and messages), the counts, the stop and the verification are equal.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

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
    claims: list[int] = []
    with monkeypatch.context() as m:
        claim = PostgresDestination.claim_keys
        m.setattr(PostgresDestination, "claim_keys", lambda self, *a: claims.append(1) or claim(self, *a))
        if not fast:
            m.setattr(PostgresDestination, "create_written_keys", DestinationSide.create_written_keys)
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
        assert bool(claims) == fast
        return {"rows": table, "failed": [(f.position, f.error) for f in failed], "counts": counts.to_dict(),
                "stopped": stopped, "verification": _plain(session.verification)}


def _plain(verification: dict) -> dict:
    return {k: v for k, v in verification.items() if k != "seconds"}


@pytest.mark.parametrize("mode", [Mode.upsert, Mode.sync_delete])
@pytest.mark.parametrize("bulk", [False, True])
@pytest.mark.parametrize("stop", [False, True])
def test_the_key_claim_gives_the_general_answer(pg_url: str, monkeypatch, mode: Mode, bulk: bool, stop: bool) -> None:
    rows = _source(stop)
    general = _load(pg_url, mode, rows, bulk, False, monkeypatch)
    fast = _load(pg_url, mode, rows, bulk, True, monkeypatch)
    assert fast == general
    assert general["failed"] or general["stopped"]
    if not stop:
        assert general["counts"]["rows_updated"] and general["counts"]["rows_skipped"]
        assert general["counts"]["rows_inserted"] and general["counts"]["rows_failed"] >= 4

