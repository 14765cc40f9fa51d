"""Every mode into every destination engine: final rows, counts, atomicity, readers."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column

pytestmark = pytest.mark.integration
ENGINES = ["postgresql", "mariadb", "sqlite"]
INITIAL = [(1, "a", 10), (2, "b", 20), (3, "c", 30), (4, "d", 40)]
SOURCE = [[(2, "b", 20), (3, "C", 31)], [(5, "e", 50), (6, "f", 60)]]
SOURCE_COLUMNS = [Column("id", "bigint"), Column("NAME", "text"), Column("amount", "int")]
EXPECTED = {
    Mode.insert_only: ([(1, "a", 10), (2, "b", 20), (3, "c", 30), (4, "d", 40), (5, "e", 50), (6, "f", 60)],
                       dict(rows_inserted=2, rows_updated=0, rows_skipped=2, rows_deleted=0)),
    Mode.upsert: ([(1, "a", 10), (2, "b", 20), (3, "C", 31), (4, "d", 40), (5, "e", 50), (6, "f", 60)],
                  dict(rows_inserted=2, rows_updated=1, rows_skipped=1, rows_deleted=0)),
    Mode.truncate_load: ([(2, "b", 20), (3, "C", 31), (5, "e", 50), (6, "f", 60)],
                         dict(rows_inserted=4, rows_updated=0, rows_skipped=0, rows_deleted=4)),
    Mode.sync_delete: ([(2, "b", 20), (3, "C", 31), (5, "e", 50), (6, "f", 60)],
                       dict(rows_inserted=2, rows_updated=1, rows_skipped=1, rows_deleted=2)),
}


@pytest.fixture
def dest(request: pytest.FixtureRequest) -> Iterator[Callable[[str], sa.Engine]]:
    """Factory: an engine on a fresh database of the named kind (postgresql, mariadb, sqlite)."""
    engines: list[sa.Engine] = []

    def make(kind: str) -> sa.Engine:
        if kind == "postgresql":
            url = request.getfixturevalue("pg_database")()
        elif kind == "mariadb":
            url = request.getfixturevalue("mysql_database")()
        else:
            url = request.getfixturevalue("sqlite_url")
        engine = create_db_engine(url)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def make_table(engine: sa.Engine, rows: list[tuple] = INITIAL, name: str = "accounts") -> sa.Table:
    table = sa.Table(name, sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
                     sa.Column("name", sa.String(20), nullable=False), sa.Column("amount", sa.Integer),
                     sa.Column("note", sa.String(20), server_default="kept"))
    with engine.begin() as conn:
        table.create(conn)
        if rows:
            conn.execute(table.insert(), [dict(id=i, name=n, amount=a) for i, n, a in rows])
    return table


def contents(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table.c.id, table.c.name, table.c.amount)
                                               .order_by(table.c.id))]


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_mode_writes_the_expected_rows_and_counts(dest, kind: str, mode: Mode) -> None:
    # Given a destination with four rows and a source with one unchanged, one changed and two new rows
    engine = dest(kind)
    table = make_table(engine)
    session = LoadSession(engine, table="accounts", columns=SOURCE_COLUMNS, mode=mode)
    # When the source arrives in two batches and the load commits
    session.begin()
    failed = [f for batch in SOURCE for f in session.write(batch)]
    counts = session.finish()
    session.commit()
    session.close()
    # Then the table and the counts are the mode's promise
    rows, expected_counts = EXPECTED[mode]
    assert failed == []
    assert contents(engine, table) == rows
    assert {k: v for k, v in counts.to_dict().items() if k != "rows_failed"} == expected_counts
    with engine.connect() as conn:  # destination columns absent from the source keep their default
        assert conn.execute(sa.select(table.c.note).where(table.c.id == 5)).scalar_one() == "kept"


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_a_failure_mid_run_leaves_the_destination_unchanged(dest, kind: str, mode: Mode) -> None:
    engine = dest(kind)
    table = make_table(engine)
    session = LoadSession(engine, table="accounts", columns=SOURCE_COLUMNS, mode=mode)
    session.begin()
    session.write(SOURCE[0])
    if mode is Mode.sync_delete:
        session.finish()
    # the worker dies between batches: the caller rolls back
    session.rollback()
    session.rollback()  # idempotent
    session.close()
    assert contents(engine, table) == INITIAL


@pytest.mark.parametrize("kind", ENGINES)
def test_readers_see_the_old_rows_until_truncate_load_commits(dest, kind: str) -> None:
    engine = dest(kind)
    table = make_table(engine)
    session = LoadSession(engine, table="accounts", columns=SOURCE_COLUMNS, mode=Mode.truncate_load)
    session.begin()
    session.write(SOURCE[1])
    reader = create_db_engine(engine.url)
    try:
        with reader.connect() as conn:
            if kind == "postgresql":
                conn.exec_driver_sql("SET lock_timeout = '2s'")
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 4
    finally:
        reader.dispose()
    session.commit()
    session.close()
    assert contents(engine, table) == [(5, "e", 50), (6, "f", 60)]
