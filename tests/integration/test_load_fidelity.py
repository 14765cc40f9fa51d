"""Type fidelity: values written by LoadSession read back equal, per destination engine."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from shared.jobspec import Mode
from shared.load import LoadSession
from shared.types import Column
from tests.integration.test_load_modes import dest  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
UTC = timezone.utc
IST = timezone(timedelta(hours=5, minutes=30))
LONG_TEXT = "long text ✓ " * 20_000
JSON_DOC = '{"a": [1, 2, {"b": null}], "emoji": "😀", "quote": "\\"x\\""}'
PRECISE = Decimal("1234567890123456789012345678.0123456789")
COLUMNS = [Column("id", "bigint"), Column("i64", "bigint"), Column("dec", "decimal", precision=38, scale=10),
           Column("f", "float"), Column("flag", "bool"), Column("txt", "text"), Column("bin", "bytes"),
           Column("d", "date"), Column("tm", "time"), Column("ts", "timestamp"), Column("tstz", "timestamptz"),
           Column("u", "uuid"), Column("j", "json")]
ROWS = [
    (1, 2**63 - 1, PRECISE, 0.1, True, "emoji 😀 and 𝄞, tab\there, newline\nand \\backslash\r", b"\x00\x01\xff\x00",
     date(1970, 1, 1), time(23, 59, 59, 999999), datetime(2024, 2, 29, 12, 34, 56, 789012),
     datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=IST), uuid.UUID("12345678-1234-5678-1234-567812345678"),
     JSON_DOC),
    (2, -(2**63), Decimal("-0.0000000001"), 1.2345678901234567e300, False, LONG_TEXT, bytes(range(256)) * 40,
     date(9999, 12, 31), time(0, 0), datetime(1999, 12, 31, 23, 59, 59),
     datetime(2030, 1, 1, tzinfo=UTC), uuid.uuid4(), "[]"),
    (3, None, None, None, None, None, None, None, None, None, None, None, None),
]


def fidelity_table(kind: str) -> sa.Table:
    long_text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
    ts = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    tm = sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb")
    dec = sa.Text() if kind == "sqlite" else sa.Numeric(38, 10)  # SQLite NUMERIC keeps 15 digits: see below
    return sa.Table("fidelity", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
                    sa.Column("i64", sa.BigInteger), sa.Column("dec", dec), sa.Column("f", sa.Double()),
                    sa.Column("flag", sa.Boolean), sa.Column("txt", long_text), sa.Column("bin", blob),
                    sa.Column("d", sa.Date), sa.Column("tm", tm), sa.Column("ts", ts),
                    sa.Column("tstz", sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")),
                    sa.Column("u", sa.Uuid), sa.Column("j", sa.JSON))


def expected(kind: str, name: str, value: object) -> object:
    if value is None:
        return None
    if name == "tstz" and kind != "postgresql":  # no zone-aware type: the instant in UTC, naive
        return value.astimezone(UTC).replace(tzinfo=None)  # type: ignore[union-attr]
    if name == "dec" and kind == "sqlite":
        return str(value)
    if name == "j":
        return json.loads(value)  # type: ignore[arg-type]
    return value


def load(engine: sa.Engine, table: str, columns: list[Column], rows: list[tuple], mode: Mode = Mode.upsert) -> list:
    session = LoadSession(engine, table=table, columns=columns, mode=mode)
    session.begin()
    failed = session.write(rows)
    session.finish()
    session.commit()
    session.close()
    return failed


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_every_type_reads_back_equal(dest, kind: str) -> None:  # noqa: F811
    engine = dest(kind)
    table = fidelity_table(kind)
    table.create(engine)
    assert load(engine, "fidelity", COLUMNS, ROWS) == []
    with engine.connect() as conn:
        got = {r.id: r for r in conn.execute(sa.select(table))}
    for row in ROWS:
        for col, value in zip(COLUMNS, row):
            read = getattr(got[row[0]], col.name)
            if col.name == "j" and isinstance(read, str):
                read = json.loads(read)
            assert read == expected(kind, col.name, value), f"{kind} {col.name} row {row[0]}"


@pytest.mark.parametrize("kind", ["mariadb"])
def test_uuid_goes_into_char36_and_binary16(dest, kind: str) -> None:  # noqa: F811
    engine = dest(kind)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ids (id INT PRIMARY KEY, c CHAR(36), b BINARY(16))")
    value = uuid.uuid4()
    cols = [Column("id", "int"), Column("c", "uuid"), Column("b", "uuid")]
    assert load(engine, "ids", cols, [(1, value, value)]) == []
    with engine.connect() as conn:
        assert tuple(conn.exec_driver_sql("SELECT c, b FROM ids").one()) == (str(value), value.bytes)


@pytest.mark.parametrize("kind", ["mariadb", "sqlite", "postgresql"])
def test_values_the_engine_cannot_hold_fail_their_row_with_a_clear_message(dest, kind: str) -> None:  # noqa: F811
    engine = dest(kind)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE odd (id INT PRIMARY KEY, n NUMERIC(38,10), f DOUBLE PRECISION, t TEXT)")
    cols = [Column("id", "int"), Column("n", "decimal"), Column("f", "float"), Column("t", "text")]
    bad = {"mariadb": (1, None, float("nan"), None), "postgresql": (1, None, None, "nul \x00 char"),
           "sqlite": (1, PRECISE, None, None)}[kind]
    failed = load(engine, "odd", cols, [bad, (2, Decimal("1.5"), 2.5, "ok")])
    assert [f.position for f in failed] == [1]
    assert {"mariadb": "nan", "postgresql": "nul", "sqlite": "15 significant digits"}[kind] in failed[0].error.lower()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT id FROM odd").scalars().all() == [2]
