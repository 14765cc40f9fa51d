"""Destination checks, key requirements, sync_delete guards, cancel."""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from shared.errors import Cancelled, SyncDeleteGuard, ValidationFailed
from shared.jobspec import Mode
from shared.load import LoadSession, check_destination
from shared.types import Column
from tests.integration.test_load_modes import INITIAL, SOURCE_COLUMNS, contents, dest, make_table  # noqa: F401

pytestmark = pytest.mark.integration


def start(engine: sa.Engine, mode: Mode, **kwargs) -> LoadSession:
    session = LoadSession(engine, table=kwargs.pop("table", "accounts"), columns=kwargs.pop("columns", SOURCE_COLUMNS),
                          mode=mode, **kwargs)
    session.begin()
    return session


def test_upsert_into_a_table_without_key_names_table_and_key(dest) -> None:  # noqa: F811
    engine = dest("sqlite")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE nokey (id INT, name TEXT, amount INT)")
    with pytest.raises(ValidationFailed, match=r"upsert into nokey needs a key.*no primary key") as info:
        start(engine, Mode.upsert, table="nokey")
    assert any(r["check"] == "key" and not r["ok"] for r in info.value.report)


def test_key_columns_need_a_unique_index(dest) -> None:  # noqa: F811
    engine = dest("postgresql")
    make_table(engine)
    with pytest.raises(ValidationFailed, match=r"accounts has no primary key or unique index on exactly \(name\)"):
        start(engine, Mode.sync_delete, key_columns=["NAME"])
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE UNIQUE INDEX accounts_name ON accounts (name)")
    session = start(engine, Mode.upsert, key_columns=["name"])
    session.write([(1, "a", 99)])
    assert session.finish().rows_updated == 1
    session.rollback()
    session.close()


def test_the_source_must_hold_the_key_and_only_known_columns(dest) -> None:  # noqa: F811
    engine = dest("mariadb")
    make_table(engine)
    no_key = [Column("name", "text"), Column("amount", "int")]
    with pytest.raises(ValidationFailed, match=r"lacks key column\(s\) of accounts: id"):
        start(engine, Mode.upsert, columns=no_key)
    with pytest.raises(ValidationFailed, match=r"source columns missing in destination table accounts: extra"):
        start(engine, Mode.insert_only, columns=SOURCE_COLUMNS + [Column("extra", "text")])
    with pytest.raises(ValidationFailed, match=r"NOT NULL columns without default of accounts .*: name"):
        start(engine, Mode.truncate_load, columns=[Column("id", "int")])
    assert contents(engine, sa.Table("accounts", sa.MetaData(), autoload_with=engine)) == INITIAL


def test_check_destination_reports_every_check_and_writes_nothing(dest) -> None:  # noqa: F811
    engine = dest("postgresql")
    make_table(engine)
    report = check_destination(engine, table="public.Accounts", columns=SOURCE_COLUMNS[:2] + [Column("Amount", "date")],
                               mode=Mode.sync_delete, key_columns=None)
    assert {r["check"]: r["ok"] for r in report} == {
        "table_exists": True, "columns_exist": True, "required_columns": True, "types_compatible": False, "key": True}
    missing = check_destination(engine, table="nope", columns=SOURCE_COLUMNS, mode=Mode.upsert, key_columns=None)
    assert missing == [{"check": "table_exists", "ok": False, "message": "destination table nope does not exist"}]


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_sync_delete_refuses_an_empty_source_unless_allowed(dest, kind: str) -> None:  # noqa: F811
    engine = dest(kind)
    table = make_table(engine)
    session = start(engine, Mode.sync_delete)
    with pytest.raises(SyncDeleteGuard, match="source returned no rows"):
        session.finish()
    session.rollback()
    session.close()
    allowed = start(engine, Mode.sync_delete, allow_empty_source=True)
    assert allowed.finish().rows_deleted == 4
    allowed.rollback()
    allowed.close()
    assert contents(engine, table) == INITIAL


def test_sync_delete_stops_above_the_delete_cap(dest) -> None:  # noqa: F811
    engine = dest("mariadb")
    table = make_table(engine)
    session = start(engine, Mode.sync_delete, max_delete_ratio=0.5)
    session.write([(1, "a", 10)])  # would delete 3 of 4
    with pytest.raises(SyncDeleteGuard, match=r"would delete 3 of 4 rows \(75.0%\)"):
        session.finish()
    session.rollback()
    session.close()
    assert contents(engine, table) == INITIAL


def test_cancel_interrupts_the_running_statement(dest) -> None:  # noqa: F811
    # Given a destination whose insert trigger sleeps
    engine = dest("postgresql")
    table = make_table(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(30); "
                             "RETURN NEW; END $$ LANGUAGE plpgsql")
        conn.exec_driver_sql("CREATE TRIGGER slow BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION slow()")
    session = start(engine, Mode.truncate_load)
    # When another thread cancels while the batch is being written
    threading.Timer(0.5, session.cancel).start()
    began = time.monotonic()
    with pytest.raises(Cancelled):
        session.write([(9, "z", 1)])
    # Then write raises promptly and rollback restores the table
    assert time.monotonic() - began < 10
    session.rollback()
    session.close()
    assert contents(engine, table) == INITIAL
