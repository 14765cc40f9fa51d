"""compare: a job's result against its destination, checksummed by PostgreSQL, MariaDB and SQLite.

The same rows are written on each engine; the row hashes must agree across engines, equal
copies compare equal, and single changed values, an extra and a missing row are each found
and named by key. Every query is read-only (the sessions are read-only on the server).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.compare import compare_job
from shared.jobspec import DestinationSpec, StepSpec
from tests.conftest import IN_CI

DATASETS = Path(os.environ.get("DM_TEST_DATASETS") or Path(__file__).resolve().parents[3] / "shared" / "datasets")
CHINOOK = DATASETS / "chinook" / "Chinook_Sqlite.sqlite"
COLUMNS = ["id", "amount", "ts", "name", "note", "data", "flag"]
DDL = {
    "postgresql": "CREATE TABLE items (id int PRIMARY KEY, amount numeric(10,2), ts timestamp(6), "
                  "name varchar(50), note text, data bytea, flag boolean)",
    "mysql": "CREATE TABLE items (id INT PRIMARY KEY, amount DECIMAL(10,2), ts DATETIME(6), "
             "name VARCHAR(50), note TEXT, data BLOB, flag TINYINT(1))",
    "sqlite": "CREATE TABLE items (id INTEGER PRIMARY KEY, amount NUMERIC(10,2), ts DATETIME, "
              "name TEXT, note TEXT, data BLOB, flag BOOLEAN)",
}
ROWS = [
    (i, Decimal(f"{i * 7}.{i % 100:02d}"), datetime(2024, 1, 1 + i % 28, i % 24, i % 60, i % 60, i * 1001 % 1_000_000),
     f"name {i} é✓" if i % 5 else "", None if i % 7 == 0 else ("" if i % 7 == 1 else f"note {i}"),
     bytes([i % 256, 0, 255, 10]) if i % 3 else None, bool(i % 2))
    for i in range(1, 301)
]


def _load(engine: sa.Engine, rows: list[tuple] = ROWS) -> None:
    name = engine.dialect.name
    with engine.begin() as conn:
        conn.execute(sa.text(DDL[name]))
        params = [dict(zip(COLUMNS, r)) for r in rows]
        if name == "sqlite":  # stored the way the SQLite loader stores them
            params = [{**p, "amount": str(p["amount"]), "ts": p["ts"].isoformat(" ", timespec="microseconds"),
                       "flag": int(p["flag"])} for p in params]
        conn.execute(sa.text(f"INSERT INTO items ({', '.join(COLUMNS)}) VALUES "
                             f"({', '.join(':' + c for c in COLUMNS)})"), params)


@pytest.fixture
def engines(pg_database: Callable[[], str], mysql_database: Callable[[], str], sqlite_url: str):
    made = {"postgresql": sa.create_engine(pg_database()), "mysql": sa.create_engine(mysql_database()),
            "sqlite": sa.create_engine(sqlite_url)}
    for engine in made.values():
        _load(engine)
    yield made
    for engine in made.values():
        engine.dispose()


def _compare(engines: dict[str, sa.Engine], source: str, destination: str, **kw) -> dict:
    projects = {1: engines[source], 2: engines[destination]}
    steps = [StepSpec(name="items", project_id=1, sql=f"SELECT {', '.join(COLUMNS)} FROM items")]
    return compare_job(steps, DestinationSpec(project_id=2, table="items", mode="upsert"), projects, **kw)


def _change(engine: sa.Engine) -> None:
    """One change per kind, each on its own key: 11 decimal, 12 timestamp, 13 trailing space,
    14 '' → NULL, 15 one blob byte, 16 missing, 1000 extra."""
    blob = "X'01FF00FF0A'" if engine.dialect.name != "postgresql" else "'\\x01ff00ff0a'::bytea"
    with engine.begin() as conn:
        for sql in ("UPDATE items SET amount = amount + 0.01 WHERE id = 11",
                    "UPDATE items SET ts = '2024-01-13 12:12:12.012013' WHERE id = 12",
                    "UPDATE items SET name = 'name 13 é✓ ' WHERE id = 13",
                    "UPDATE items SET note = NULL WHERE id = 15",
                    f"UPDATE items SET data = {blob} WHERE id = 16",
                    "DELETE FROM items WHERE id = 17",
                    "INSERT INTO items (id, name) VALUES (1000, 'extra')"):
            conn.execute(sa.text(sql))


PAIRS = [("postgresql", "mysql"), ("mysql", "postgresql"), ("sqlite", "postgresql"), ("mysql", "sqlite")]


@pytest.mark.parametrize(("source", "destination"), PAIRS)
def test_a_copy_compares_equal_then_each_change_is_named_by_key(engines, source, destination, monkeypatch):
    if source == "postgresql":  # bisect every differing bucket down to the last level
        monkeypatch.setattr("shared.compare.LEAF_ROWS", 0)
    # Given the same rows on both engines
    equal = _compare(engines, source, destination)
    assert equal["equal"] is True, equal
    assert (equal["source_rows"], equal["destination_rows"]) == (300, 300)
    assert (equal["only_in_source"], equal["only_in_destination"], equal["different"]) == (0, 0, 0)
    assert equal["samples"] == [] and equal["key"] == ["id"]
    # When the destination changes in one value per kind, loses a row and gains one
    _change(engines[destination])
    report = _compare(engines, source, destination)
    # Then each is found and named by its key, with the columns that differ
    assert report["equal"] is False
    assert (report["only_in_source"], report["only_in_destination"], report["different"]) == (1, 1, 5)
    by_key = {s["key"]["id"]: s for s in report["samples"]}
    assert by_key[17]["destination"] is None and by_key[17]["source"]["id"] == 17
    assert by_key[1000]["source"] is None and by_key[1000]["destination"]["name"] == "extra"
    assert {k: by_key[k]["columns"] for k in (11, 12, 13, 15, 16)} == {
        11: ["amount"], 12: ["ts"], 13: ["name"], 15: ["note"], 16: ["data"]}
    assert by_key[15]["source"]["note"] == "" and by_key[15]["destination"]["note"] is None
    assert report["seconds"] >= 0


FLOAT8 = {"postgresql": "float8", "mysql": "DOUBLE", "sqlite": "REAL"}
FLOATS = [0.1, 1 / 3, -2.5, 100.0, 0.0, -0.0, 1e15, 1e16, 1e20, 1.2345678901234567e300, 1.7976931348623157e308,
          1e-7, -1.5e-5, -3.5e-30, 2.5e-310, 123456.789, 12345678912345678.0]


def test_the_row_hashes_agree_on_every_engine(engines):
    """Same values → same canonical text → same hash on PostgreSQL, MariaDB and SQLite."""
    from shared.compare import _Side
    from shared.dialects.checksum import canonical_kind
    from shared.extract.readside import ReadSide

    kinds = [canonical_kind(t) for t in ("int", "decimal", "timestamp", "text", "text", "bytes", "bool")]
    hashes = {}
    for name, engine in engines.items():
        step = StepSpec(name="items", project_id=1, sql=f"SELECT {', '.join(COLUMNS)} FROM items")
        with ReadSide([step], {1: engine}, timeout_s=30) as read:
            read.open()
            side = _Side(read, COLUMNS, kinds, [0])
            hashes[name] = side.pairs(0, None)
    assert len(hashes["postgresql"]) == 300
    assert hashes["postgresql"] == hashes["mysql"] == hashes["sqlite"]
    # doubles of every magnitude (MariaDB prints 1e20 and -3.5e-30; PostgreSQL 1e+20)
    for name, engine in engines.items():
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE floats (id int PRIMARY KEY, f {FLOAT8[name]})"))
            conn.execute(sa.text("INSERT INTO floats VALUES (:i, :f)"),
                         [{"i": i, "f": f} for i, f in enumerate(FLOATS)])
        with ReadSide([StepSpec(name="f", project_id=1, sql="SELECT id, f FROM floats")], {1: engine},
                      timeout_s=30) as read:
            read.open()
            hashes[name] = _Side(read, ["id", "f"], ["int", "float"], [0]).pairs(0, None)
    assert hashes["postgresql"] == hashes["mysql"] == hashes["sqlite"]


def test_a_job_without_a_key_compares_counts_and_one_checksum(engines):
    with engines["mysql"].begin() as conn:
        conn.execute(sa.text("CREATE TABLE nokey AS SELECT * FROM items"))
    projects = {1: engines["postgresql"], 2: engines["mysql"]}
    steps = [StepSpec(name="items", project_id=1, sql=f"SELECT {', '.join(COLUMNS)} FROM items")]
    report = compare_job(steps, DestinationSpec(project_id=2, table="nokey"), projects)
    assert report["equal"] is True and report["method"] == "count+checksum"
    assert report["different"] is None and "no key" in report["note"]
    with engines["mysql"].begin() as conn:
        conn.execute(sa.text("UPDATE nokey SET name = 'x' WHERE id = 3"))
    assert compare_job(steps, DestinationSpec(project_id=2, table="nokey"), projects)["equal"] is False
    # key_columns without a unique index on them: not a key; the note says why
    report = compare_job(steps, DestinationSpec(project_id=2, table="nokey", key_columns=["id"]), projects)
    assert report["method"] == "count+checksum" and "no primary key or unique index" in report["note"]


def test_compare_works_over_connections_that_cannot_write(engines):
    """Every compare query is a read: sources and destinations reached by read-only sessions still compare."""
    pg_ro = sa.create_engine(engines["postgresql"].url,
                             connect_args={"options": "-c default_transaction_read_only=on"})
    my_ro = sa.create_engine(engines["mysql"].url, connect_args={"init_command": "SET SESSION TRANSACTION READ ONLY"})
    try:
        with my_ro.connect() as conn, pytest.raises(sa.exc.OperationalError):
            conn.execute(sa.text("INSERT INTO items (id) VALUES (5000)"))  # the session really is read-only
        _change(engines["mysql"])
        report = _compare({"postgresql": pg_ro, "mysql": my_ro}, "postgresql", "mysql")
        assert (report["only_in_source"], report["only_in_destination"], report["different"]) == (1, 1, 5)
    finally:
        pg_ro.dispose()
        my_ro.dispose()


def test_chinook_invoices_from_sqlite_compare_with_their_mariadb_copy(engines, tmp_path):
    # Given Chinook's Invoice table (SQLite file: REAL totals, text dates) copied into MariaDB
    import shutil

    if not CHINOOK.exists():
        (pytest.fail if IN_CI else pytest.skip)(f"Chinook not found at {CHINOOK} (set DM_TEST_DATASETS)")
    path = shutil.copy(CHINOOK, tmp_path / "chinook.sqlite")
    chinook = sa.create_engine(f"sqlite:///{path}")
    with chinook.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM Invoice")).all()
    with engines["mysql"].begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE Invoice (InvoiceId INT PRIMARY KEY, CustomerId INT NOT NULL, InvoiceDate DATETIME NOT NULL,"
            " BillingAddress VARCHAR(70), BillingCity VARCHAR(40), BillingState VARCHAR(40),"
            " BillingCountry VARCHAR(40), BillingPostalCode VARCHAR(10), Total DECIMAL(10,2) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO Invoice VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i)"),
                     [dict(zip("abcdefghi", (*r[:8], Decimal(repr(r[8])).quantize(Decimal("0.01")))))
                      for r in rows])
    projects = {1: chinook, 2: engines["mysql"]}
    steps = [StepSpec(name="invoices", project_id=1, sql="SELECT * FROM Invoice")]
    destination = DestinationSpec(project_id=2, table="Invoice", mode="upsert")
    try:
        report = compare_job(steps, destination, projects)
        assert report["equal"] is True and report["source_rows"] == 412
        # When one total's last digit changes, it is named by key
        with engines["mysql"].begin() as conn:
            conn.execute(sa.text("UPDATE Invoice SET Total = Total + 0.01 WHERE InvoiceId = 77"))
        report = compare_job(steps, destination, projects)
        assert report["different"] == 1 and report["samples"][0]["key"] == {"InvoiceId": 77}
        assert report["samples"][0]["columns"] == ["Total"]
    finally:
        chinook.dispose()


@pytest.mark.parametrize("bulk", [True, False], ids=["fast path", "general path"])
def test_awkward_values_written_by_the_loader_compare_equal_in_both_directions(pg_database, mysql_database, bulk):
    """Text with escapes and emoji, big decimals, bytea, time, timestamptz read in a +05:30 session,
    JSON, booleans, NULLs, doubles up to 1e300, a PostgreSQL real into a DOUBLE and a MariaDB FLOAT into
    a real: what the real loader writes compares equal."""
    from tests.integration.test_fastpath_equivalence import (MY_SOURCE, MY_TO_PG_DEST, PG_SOURCE, PG_TO_MY_DEST,
                                                             PG_TO_MY_SQL, execute, migrate)
    from shared.jobspec import Mode

    pg, my = pg_database(), mysql_database()
    execute(pg, PG_SOURCE)
    execute(pg, f"ALTER DATABASE \"{sa.engine.make_url(pg).database}\" SET timezone = 'Asia/Kolkata'")
    execute(my, MY_SOURCE + [f"CREATE TABLE copied {PG_TO_MY_DEST}"])
    execute(pg, f"CREATE TABLE copied {MY_TO_PG_DEST}")
    migrate(pg, PG_TO_MY_SQL, my, "copied", Mode.truncate_load, bulk=bulk)  # row 4 (NaN) fails
    migrate(my, "SELECT * FROM src", pg, "copied", Mode.truncate_load, bulk=bulk)
    engines = {"postgresql": sa.create_engine(pg), "mysql": sa.create_engine(my)}
    try:
        def compare(source: str, destination: str, sql: str) -> dict:
            step = StepSpec(name="src", project_id=1, sql=sql)
            return compare_job([step], DestinationSpec(project_id=2, table="copied"),
                               {1: engines[source], 2: engines[destination]})

        to_my = compare("postgresql", "mysql", "SELECT id, i, n, f, r, b, t, v, by, d, tm, ts, tstz, j FROM src")
        assert (to_my["only_in_source"], to_my["only_in_destination"], to_my["different"]) == (1, 0, 0), to_my
        assert to_my["samples"][0]["key"] == {"id": 4} and to_my["source_rows"] == 4
        to_pg = compare("mysql", "postgresql", "SELECT id, i, n, f, b, t, v, bl, d, ts, fl, y FROM src")
        assert to_pg["equal"] is True, to_pg
    finally:
        for engine in engines.values():
            engine.dispose()
