"""Row-level errors: bad rows isolated by halving, good rows written, 100 consecutive stop the run."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared.errors import TooManyFailures
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column
from tests.integration.test_load_modes import dest  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
COLUMNS = [Column("id", "bigint"), Column("name", "text"), Column("parent_id", "int")]
BAD = {  # position -> (row, words expected in the database's message)
    5: ((5, None, 1), ("null",)),
    100: ((100, "x" * 50, 1), ("long",)),
    101: ((101, "ok", 999), ("foreign",)),
    500: ((500, None, 2), ("null",)),
    777: ((777, "y" * 11, 2), ("long",)),
    998: ((998, "ok", 12345), ("foreign",)),
    1000: ((1000, None, None), ("null",)),
}


def make_tables(engine: sa.Engine) -> sa.Table:
    meta = sa.MetaData()
    parent = sa.Table("parent", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    child = sa.Table("child", meta, sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
                     sa.Column("name", sa.String(10), nullable=False),
                     sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id")))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(parent.insert(), [{"id": 1}, {"id": 2}])
    return child


def source(kind: str) -> list[tuple]:
    rows = [(i, f"name{i % 7}", 1 + i % 2) for i in range(1, 1001)]
    for position, (row, _) in BAD.items():
        if kind == "sqlite" and row[1] and len(row[1]) > 10:  # SQLite does not enforce lengths
            row = (row[0], None, row[2])
        rows[position - 1] = row
    return rows


@pytest.mark.parametrize("mode", [Mode.insert_only, Mode.upsert, Mode.truncate_load, Mode.sync_delete],
                         ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_seven_bad_rows_of_a_thousand_are_isolated(dest, kind: str, mode: Mode) -> None:  # noqa: F811
    # Given 1,000 source rows of which 7 break NOT NULL, the column length or a foreign key
    engine = dest(kind)
    child = make_tables(engine)
    rows = source(kind)
    # When they are loaded in batches of 250
    session = LoadSession(engine, table="child", columns=COLUMNS, mode=mode)
    session.begin()
    failed = [f for start in range(0, 1000, 250) for f in session.write(rows[start:start + 250])]
    counts = session.finish()
    session.commit()
    session.close()
    # Then 993 rows are written and the 7 bad ones are reported with position and message
    assert [f.position for f in failed] == sorted(BAD)
    for f in failed:
        words = ("null",) if kind == "sqlite" and BAD[f.position][1] == ("long",) else BAD[f.position][1]
        assert all(w in f.error.lower() for w in words), (f.position, f.error)
        assert f.values["id"] == f.position and f.at.tzinfo is not None
    assert counts.rows_inserted == 993 and counts.rows_failed == 7
    with engine.connect() as conn:
        ids = conn.execute(sa.select(child.c.id).order_by(child.c.id)).scalars().all()
    assert ids == [i for i in range(1, 1001) if i not in BAD]


def _payload(fmt: str, rows: list[tuple]) -> bytes:
    if fmt == "pg_text":
        return "".join("\t".join("\\N" if v is None else str(v) for v in r) + "\n" for r in rows).encode()
    return "".join(",".join("NULL" if v is None else f'"{v}"' for v in r) + "\n" for r in rows).encode()


@pytest.mark.parametrize("bulk", [False, True], ids=["general", "bulk"])
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_150_consecutive_bad_rows_stop_the_run_and_rollback_restores_the_table(dest, kind: str, mode: Mode,  # noqa: F811
                                                                                bulk: bool) -> None:
    engine = dest(kind)
    fmt = engine.dialect.name != "sqlite" and ("pg_text" if kind == "postgresql" else "mysql_csv")
    if bulk and not fmt:
        pytest.skip("no bulk text path into SQLite")
    child = make_tables(engine)
    with engine.begin() as conn:
        conn.execute(child.insert(), [{"id": 5000, "name": "before", "parent_id": 1}])
    rows = [(i, "good", 1) for i in range(1, 51)] + [(i, None, 1) for i in range(51, 201)]
    session = LoadSession(engine, table="child", columns=COLUMNS, mode=mode)
    session.begin()

    def write(part: list[tuple]) -> list:
        return session.write_bulk(_payload(fmt, part), len(part), fmt) if bulk else session.write(part)

    write(rows[:120])
    with pytest.raises(TooManyFailures) as info:
        write(rows[120:])
    assert info.value.consecutive == 100
    assert [f.position for f in info.value.failed_rows][-1] == 150  # 70 in the first batch, 30 here
    session.rollback()
    session.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(child.c.id, child.c.name)).all() == [(5000, "before")]


def test_a_failed_row_still_counts_as_present_for_sync_delete(dest) -> None:  # noqa: F811
    engine = dest("postgresql")
    child = make_tables(engine)
    with engine.begin() as conn:
        conn.execute(child.insert(), [{"id": i, "name": "old", "parent_id": 1} for i in (1, 2, 3)])
    session = LoadSession(engine, table="child", columns=COLUMNS, mode=Mode.sync_delete)
    session.begin()
    failed = session.write([(1, "new", 1), (2, None, 1)])
    counts = session.finish()
    session.commit()
    session.close()
    assert [f.position for f in failed] == [2]
    assert counts.rows_deleted == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(child.c.id, child.c.name).order_by(child.c.id)).all() == [(1, "new"), (2, "old")]
