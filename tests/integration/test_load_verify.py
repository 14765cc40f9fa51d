"""The loader's verification before COMMIT (job option verify), on real destinations.

Every mode × verify level passes on a correct load; a destination changed under the load (a
trigger) fails verification, names the key and leaves the table as it was; rows that failed
(partial_success) cause no false mismatch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.jobspec import Mode
from shared.load import LoadSession
from shared.load.verify import VerificationFailed
from shared.types import Column

pytestmark = pytest.mark.integration
ENGINES = ["postgresql", "mariadb", "sqlite"]
LEVELS = ["none", "count", "checksum"]
INITIAL = [(1, "a", 10), (2, "b", 20), (3, "c", 30), (4, "d", 40)]
SOURCE = [[(2, "b", 20), (3, "C", 31)], [(5, "e", 50), (6, "f", 60)]]
COLUMNS = [Column("id", "bigint"), Column("name", "text"), Column("amount", "int")]
FINAL = {
    Mode.insert_only: INITIAL + [(5, "e", 50), (6, "f", 60)],
    Mode.upsert: [(1, "a", 10), (2, "b", 20), (3, "C", 31), (4, "d", 40), (5, "e", 50), (6, "f", 60)],
    Mode.truncate_load: [(2, "b", 20), (3, "C", 31), (5, "e", 50), (6, "f", 60)],
    Mode.sync_delete: [(2, "b", 20), (3, "C", 31), (5, "e", 50), (6, "f", 60)],
}


@pytest.fixture
def dest(request: pytest.FixtureRequest) -> Iterator[Callable[[str], sa.Engine]]:
    engines: list[sa.Engine] = []

    def make(kind: str) -> sa.Engine:
        url = {"postgresql": lambda: request.getfixturevalue("pg_database")(),
               "mariadb": lambda: request.getfixturevalue("mysql_database")(),
               "sqlite": lambda: request.getfixturevalue("sqlite_url")}[kind]()
        engine = create_db_engine(url)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def make_table(engine: sa.Engine, *, keyed: bool = True, rows: list[tuple] = INITIAL) -> sa.Table:
    table = sa.Table("accounts", sa.MetaData(),
                     sa.Column("id", sa.BigInteger, primary_key=keyed, autoincrement=False, nullable=False),
                     sa.Column("name", sa.String(20), nullable=False), sa.Column("amount", sa.Integer),
                     sa.CheckConstraint("amount >= 0", name="amount_not_negative"))
    with engine.begin() as conn:
        table.create(conn)
        if rows:
            conn.execute(table.insert(), [dict(id=i, name=n, amount=a) for i, n, a in rows])
    return table


def contents(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(table.c.id, table.c.name, table.c.amount)))


def load(engine: sa.Engine, mode: Mode, verify: str, batches: list[list[tuple]], *,
         extracted: int | None = None) -> LoadSession:
    """One load to the end; commits when finish() passes, rolls back (and re-raises) otherwise."""
    session = LoadSession(engine, table="accounts", columns=COLUMNS, mode=mode, verify=verify)
    session.begin()
    try:
        for batch in batches:
            session.write(batch)
        session.finish(extracted=extracted)
        session.commit()
    finally:
        session.close()
    return session


def add_trigger(engine: sa.Engine, kind: str, action: str) -> None:
    """A trigger that changes the load under it. ``action``: alter_value (amount + 1 for id 5),
    change_key (id 6 becomes 106) or extra_row (PostgreSQL: inserting id 5 also inserts id 99)."""
    with engine.begin() as conn:
        if kind == "postgresql":
            body = {"alter_value": "IF NEW.id = 5 THEN NEW.amount := NEW.amount + 1; END IF; RETURN NEW;",
                    "change_key": "IF NEW.id = 6 THEN NEW.id := 106; END IF; RETURN NEW;",
                    "extra_row": "IF NEW.id = 5 THEN INSERT INTO accounts VALUES (99, 'z', 9); END IF; RETURN NEW;"}
            conn.exec_driver_sql(f"CREATE FUNCTION dm_t() RETURNS trigger AS $$ BEGIN {body[action]} END $$ "
                                 "LANGUAGE plpgsql")
            when = "AFTER" if action == "extra_row" else "BEFORE"
            conn.exec_driver_sql(f"CREATE TRIGGER dm_t {when} INSERT OR UPDATE ON accounts FOR EACH ROW "
                                 "EXECUTE FUNCTION dm_t()")
        elif kind == "mariadb":
            body = {"alter_value": "IF NEW.id = 5 THEN SET NEW.amount = NEW.amount + 1; END IF",
                    "change_key": "IF NEW.id = 6 THEN SET NEW.id = 106; END IF"}[action]
            for event in ("INSERT", "UPDATE"):
                conn.exec_driver_sql(f"CREATE TRIGGER dm_t_{event.lower()} BEFORE {event} ON accounts "
                                     f"FOR EACH ROW BEGIN {body}; END")
        else:
            body = {"alter_value": "UPDATE accounts SET amount = amount + 1 WHERE id = 5 AND NEW.id = 5",
                    "change_key": "UPDATE accounts SET id = 106 WHERE id = 6 AND NEW.id = 6",
                    "extra_row": "INSERT INTO accounts SELECT 99, 'z', 9 WHERE NEW.id = 5"}[action]
            conn.exec_driver_sql(f"CREATE TRIGGER dm_t AFTER INSERT ON accounts BEGIN {body}; END")


@pytest.mark.parametrize("verify", LEVELS)
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_a_correct_load_passes_verification_at_every_level(dest, kind: str, mode: Mode, verify: str) -> None:
    engine = dest(kind)
    table = make_table(engine)
    session = load(engine, mode, verify, SOURCE, extracted=4)
    assert contents(engine, table) == FINAL[mode]
    result = session.verification
    assert result["method"] == verify
    assert result["outcome"] == ("skipped" if verify == "none" else "passed")
    if verify != "none":
        assert result["rows_expected"] == 4 and result["problems"] == [] and result["keys"] == []
        assert result["seconds"] >= 0
    if verify == "checksum":
        assert result["rows_hashed"] == 4 and result["different"] == 0


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_a_trigger_that_alters_one_value_fails_checksum_and_leaves_the_destination_as_it_was(
        dest, kind: str, mode: Mode) -> None:
    # Given a destination whose trigger adds 1 to the amount of id 5 as it is written
    engine = dest(kind)
    table = make_table(engine)
    add_trigger(engine, kind, "alter_value")
    # When a checksum-verified load writes id 5
    with pytest.raises(VerificationFailed) as caught:
        load(engine, mode, "checksum", SOURCE, extracted=4)
    # Then it fails naming key 5 as different, and nothing was committed
    result = caught.value.verification
    assert result["outcome"] == "failed" and result["different"] == 1
    assert result["keys"] == [{"key": {"id": 5}, "problem": "different"}]
    assert "id=5" in str(caught.value) and "nothing was committed" in str(caught.value)
    assert contents(engine, table) == INITIAL


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_the_count_level_cannot_see_an_altered_value(dest, kind: str, mode: Mode) -> None:
    engine = dest(kind)
    table = make_table(engine)
    add_trigger(engine, kind, "alter_value")
    session = load(engine, mode, "count", SOURCE, extracted=4)
    assert session.verification["outcome"] == "passed"
    assert (5, "e", 51) in contents(engine, table)


@pytest.mark.parametrize("verify", ["count", "checksum"])
@pytest.mark.parametrize("mode", [Mode.insert_only, Mode.upsert, Mode.sync_delete], ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_a_trigger_that_changes_a_key_fails_verification_naming_the_missing_key(
        dest, kind: str, mode: Mode, verify: str) -> None:
    engine = dest(kind)
    table = make_table(engine)
    add_trigger(engine, kind, "change_key")
    with pytest.raises(VerificationFailed) as caught:
        load(engine, mode, verify, SOURCE, extracted=4)
    result = caught.value.verification
    assert result["missing"] == 1
    assert {"key": {"id": 6}, "problem": "missing"} in result["keys"]
    assert contents(engine, table) == INITIAL


@pytest.mark.parametrize("verify", ["count", "checksum"])
@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])  # a MariaDB trigger cannot write its own table
def test_a_row_added_under_truncate_load_fails_verification(dest, kind: str, verify: str) -> None:
    engine = dest(kind)
    table = make_table(engine)
    add_trigger(engine, kind, "extra_row")
    with pytest.raises(VerificationFailed, match="holds 5 rows, expected 4") as caught:
        load(engine, Mode.truncate_load, verify, SOURCE, extracted=4)
    if verify == "checksum":  # the hashed rows name the extra key
        assert caught.value.verification["keys"] == [{"key": {"id": 99}, "problem": "extra"}]
    assert contents(engine, table) == INITIAL


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_sync_delete_removes_a_row_added_under_it_and_then_verifies(dest, kind: str) -> None:
    engine = dest(kind)
    table = make_table(engine)
    add_trigger(engine, kind, "extra_row")
    session = load(engine, Mode.sync_delete, "checksum", SOURCE, extracted=4)
    assert session.verification["outcome"] == "passed" and session.verification["extra"] == 0
    assert contents(engine, table) == FINAL[Mode.sync_delete]


BAD = [(7, None, 70), (8, "h", 80), (2, None, 21), (9, "i", 90)]  # name NOT NULL: rows 7 and 2 fail


@pytest.mark.parametrize("verify", ["count", "checksum"])
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_failed_rows_are_not_expected_so_partial_success_verifies(dest, kind: str, mode: Mode, verify: str) -> None:
    # Given a source where two rows fail (NULL into NOT NULL), one of them with a key already present
    engine = dest(kind)
    table = make_table(engine)
    # When the load verifies
    session = load(engine, mode, verify, [BAD], extracted=4)
    # Then verification passes on the rows written; the failed key 2 keeps its old row where the mode keeps it
    failed = session.counts.rows_failed  # insert_only: an engine may skip the existing key 2 before checking NULL
    assert failed == 2 or (mode is Mode.insert_only and failed == 1)
    assert session.verification["outcome"] == "passed" and session.verification["rows_expected"] == 4 - failed
    written = [(8, "h", 80), (9, "i", 90)]
    expected = {Mode.truncate_load: written, Mode.sync_delete: [(2, "b", 20)] + written}.get(mode, INITIAL + written)
    assert contents(engine, table) == sorted(expected)


# every odd row fails the CHECK (only the database knows): isolated on the server, row by row
@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the runs the server isolated row by row (Dialect.run_isolation calls)."""
    from shared.dialects.mysql import MySQLDialect
    from shared.dialects.postgresql import PostgresDialect

    calls: list[int] = []
    for cls in (MySQLDialect, PostgresDialect):
        def spy(self, conn, handle, *, columns, rows, _orig=cls.run_isolation):  # noqa: ANN001
            calls.append(len(rows))
            return _orig(self, conn, handle, columns=columns, rows=rows)
        monkeypatch.setattr(cls, "run_isolation", spy)
    return calls


DENSE = [(i, f"n{i}", -1 if i % 2 else i) for i in range(1, 301)]


@pytest.mark.parametrize("verify", ["count", "checksum"])
@pytest.mark.parametrize("mode", [Mode.upsert, Mode.insert_only], ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_dense_bad_rows_isolated_on_the_server_verify(dest, isolated, kind: str, mode: Mode, verify: str) -> None:
    engine = dest(kind)
    table = make_table(engine, rows=[(2, "old", 2), (4, "old", 4)])  # insert_only skips these two keys
    session = load(engine, mode, verify, [DENSE[:100], DENSE[100:]], extracted=300)
    assert session.counts.rows_failed == 150
    assert session.verification["outcome"] == "passed" and session.verification["rows_expected"] == 150
    rows = contents(engine, table)
    assert len(rows) == 150 and (rows[0] == (2, "old", 2)) is (mode is Mode.insert_only)
    assert isolated, "the dense batch was not isolated on the server"


@pytest.mark.parametrize("mode", [Mode.upsert, Mode.insert_only], ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_value_altered_among_server_isolated_rows_fails_checksum(dest, isolated, kind: str, mode: Mode) -> None:
    engine = dest(kind)
    table = make_table(engine, rows=[])
    add_trigger(engine, kind, "alter_value")  # id 5 is odd: make it a good row of the dense batch
    rows = [(5, "e", 5) if r[0] == 5 else r for r in DENSE]
    with pytest.raises(VerificationFailed) as caught:
        load(engine, mode, "checksum", [rows[:100], rows[100:]], extracted=300)
    assert caught.value.verification["keys"] == [{"key": {"id": 5}, "problem": "different"}]
    assert contents(engine, table) == [] and isolated


@pytest.mark.parametrize("kind", ENGINES)
def test_rows_lost_between_extractor_and_loader_fail_verification(dest, kind: str) -> None:
    engine = dest(kind)
    table = make_table(engine)
    with pytest.raises(VerificationFailed, match="received 4 rows but the extractor read 5"):
        load(engine, Mode.upsert, "count", SOURCE, extracted=5)
    assert contents(engine, table) == INITIAL


@pytest.mark.parametrize("verify", ["count", "checksum"])
@pytest.mark.parametrize("mode", [Mode.insert_only, Mode.truncate_load], ids=lambda m: m.value)
@pytest.mark.parametrize("kind", ENGINES)
def test_keyless_tables_verify_counts_and_the_whole_table_checksum(dest, kind: str, mode: Mode, verify: str) -> None:
    engine = dest(kind)
    table = make_table(engine, keyed=False)
    session = load(engine, mode, verify, SOURCE, extracted=4)
    assert session.verification["outcome"] == "passed"
    assert len(contents(engine, table)) == (8 if mode is Mode.insert_only else 4)


@pytest.mark.parametrize("kind", ENGINES)
def test_keyless_truncate_load_with_an_altered_value_fails_the_whole_table_checksum(dest, kind: str) -> None:
    engine = dest(kind)
    table = make_table(engine, keyed=False)
    add_trigger(engine, kind, "alter_value")
    with pytest.raises(VerificationFailed, match="whole-table checksum"):
        load(engine, Mode.truncate_load, "checksum", SOURCE, extracted=4)
    assert contents(engine, table) == INITIAL


@pytest.mark.parametrize("verify", ["count", "checksum"])
@pytest.mark.parametrize("kind", ENGINES)
def test_rows_whose_unique_key_holds_null_do_not_fail_verification(dest, kind: str, verify: str) -> None:
    # Given a key backed by a unique index on a nullable column (NULLs never conflict)
    engine = dest(kind)
    table = sa.Table("coded", sa.MetaData(), sa.Column("code", sa.String(10)), sa.Column("amount", sa.Integer),
                     sa.Index("coded_code", "code", unique=True))
    with engine.begin() as conn:
        table.create(conn)
    session = LoadSession(engine, table="coded", columns=[Column("code", "text"), Column("amount", "int")],
                          mode=Mode.upsert, key_columns=["code"], verify=verify)
    session.begin()
    try:
        session.write([("a", 1), (None, 2), (None, 3)])
        session.finish(extracted=3)
        session.commit()
    finally:
        session.close()
    assert session.verification["outcome"] == "passed"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 3
