"""Interleaved bad rows at scale: 60 % of 20,000 rows are bad, never 100 in a row.

Each run must end like a partial success: every bad row reported once with the database's
message, every good row written, the destination holding exactly the good rows. (Timing is
measured in ``make bench BENCH_ARGS="--bad-rows"``, not here.)
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from bench.bad_rows import COLUMNS, DDL, is_bad, source
from shared.jobspec import Mode
from shared.load import LoadSession
from tests.integration.test_load_modes import dest  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
ROWS = 20_000


@pytest.mark.parametrize("kind, mode, bad", [
    ("postgresql", Mode.truncate_load, "check"),  # was: "out of shared memory" (savepoints piled up)
    ("postgresql", Mode.insert_only, "check"),  # was: ~2,000 rows in 4.5 minutes
    ("mariadb", Mode.upsert, "check"),  # was: CHECK violation (4025) failed the whole run
    ("mariadb", Mode.sync_delete, "null"),  # NULL into NOT NULL: fails before reaching the database
])
def test_sixty_percent_interleaved_bad_rows_are_all_isolated(dest, kind: str, mode: Mode, bad: str) -> None:  # noqa: F811
    engine = dest(kind)
    with engine.begin() as conn:
        conn.exec_driver_sql(DDL)
    rows = source(ROWS, bad)
    session = LoadSession(engine, table="bad", columns=COLUMNS, mode=mode)
    session.begin()
    failed = [f for start in range(0, ROWS, 5_000) for f in session.write(rows[start:start + 5_000])]
    counts = session.finish()
    session.commit()
    session.close()
    good = [i for i in range(1, ROWS + 1) if not is_bad(i)]
    assert [f.position for f in failed] == [i for i in range(1, ROWS + 1) if is_bad(i)]
    words = ("amount",) if bad == "check" else ("null", "name")
    assert all(w in failed[0].error.lower() for w in words), failed[0].error
    assert (counts.rows_inserted, counts.rows_failed) == (len(good), ROWS - len(good))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM bad ORDER BY id")).scalars().all() == good
