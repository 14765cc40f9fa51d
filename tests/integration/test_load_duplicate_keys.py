"""Two source rows landing on one destination key are failed rows, never a silent merge.

The destination decides what "the same key" means: MariaDB's utf8mb4_general_ci ('a' =
'A', 'b' = 'b '), a PostgreSQL case-insensitive ICU collation and char(n) padding, SQLite's
COLLATE NOCASE and RTRIM. Whatever the keyed mode, on both the general and the bulk-text
path, the first source row of a key is written and each later one fails naming both keys;
the counts say what the destination holds.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.dialects.bulk import MYSQL_CSV, PG_TEXT
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column
from tests.integration.test_load_modes import dest  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
COLUMNS = [Column("code", "text"), Column("amount", "int")]
# batch 1 holds 'a'; batch 2 repeats it as 'A' and holds 'b' twice as the destination sees it
# ('b ' under PAD SPACE or char(n); SQLite's NOCASE does not ignore trailing spaces: 'B' there)
BATCHES = [[("a", 1), ("x", 2)], [("A", 3), ("b", 4), ("b ", 5)]]
TABLES = {
    "mariadb": "CREATE TABLE codes (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, amount INT)",
    "postgresql": ["CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
                   "CREATE TABLE codes (code char(3) COLLATE ci PRIMARY KEY, amount int)"],
    "sqlite": "CREATE TABLE codes (code VARCHAR(10) COLLATE NOCASE PRIMARY KEY, amount INT)",
}


def payload(fmt: str, rows: list[tuple]) -> bytes:
    if fmt == PG_TEXT:
        return "".join(f"{c}\t{a}\n" for c, a in rows).encode()
    return "".join(f'"{c}","{a}"\n' for c, a in rows).encode()


@pytest.mark.parametrize("bulk", [False, True], ids=["general", "bulk"])
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_rows_landing_on_a_key_already_written_fail_in_every_keyed_mode(dest, kind: str, mode: Mode,  # noqa: F811
                                                                         bulk: bool) -> None:
    engine = dest(kind)
    fmt = get_dialect(engine.dialect.name).bulk_import_format
    if bulk and fmt is None:
        pytest.skip("no bulk text path into SQLite")
    with engine.begin() as conn:
        for ddl in [TABLES[kind]] if isinstance(TABLES[kind], str) else TABLES[kind]:
            conn.exec_driver_sql(ddl)
    # When five rows arrive in two batches, two of them repeating a key as the destination compares it
    session = LoadSession(engine, table="codes", columns=COLUMNS, mode=mode)
    session.begin()
    failed = []
    for batch in BATCHES if kind != "sqlite" else [BATCHES[0], [("A", 3), ("b", 4), ("B", 5)]]:
        failed += session.write_bulk(payload(fmt, batch), len(batch), fmt) if bulk else session.write(batch)
    counts = session.finish()
    session.commit()
    session.close()
    # Then the first row of each key is written, the repeats fail with both keys named, and the counts agree
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT code, amount FROM codes ORDER BY amount")).all()
    assert [(c.rstrip(), a) for c, a in rows] == [("a", 1), ("x", 2), ("b", 4)]
    assert [f.position for f in failed] == [3, 5]
    for f in failed:
        assert "duplicate" in f.error.lower() or "unique" in f.error.lower(), f.error
    if mode is not Mode.truncate_load:  # truncate_load: the destination's own unique index refuses it
        assert "('A" in failed[0].error and "('a" in failed[0].error, failed[0].error
    assert (counts.rows_inserted, counts.rows_updated, counts.rows_skipped, counts.rows_failed) == (3, 0, 0, 2)
