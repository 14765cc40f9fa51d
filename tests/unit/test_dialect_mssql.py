"""SQL Server loading statements, compiled with SQLAlchemy's mssql dialect (no server, no pyodbc)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from shared.dialects import get_dialect
from shared.dialects.loading import (
    build_batch_stats, build_count_missing, build_delete_missing, build_insert_new, build_key_check, build_key_repeat,
    compile_sql, temp_table,
)
from shared.dialects.mssql_load import build_mssql_merge, build_mssql_staging, mssql_row_encoder

DIALECT = mssql.dialect()
TARGET = sa.Table("Orders", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                  sa.Column("region", sa.String(10), primary_key=True), sa.Column("total", sa.Numeric(38, 10)),
                  sa.Column("at", mssql.DATETIMEOFFSET()), sa.Column("naive", sa.DateTime()), schema="sales")
COLUMNS = ["id", "region", "total", "at", "naive"]
STAGE = temp_table("#dm_stage_1", COLUMNS)


def test_merge_updates_changed_rows_only_and_reports_actions() -> None:
    sql = str(build_mssql_merge(TARGET, STAGE, COLUMNS, ["id", "region"], DIALECT))
    assert sql.splitlines() == [
        "MERGE INTO sales.[Orders] WITH (HOLDLOCK) AS t",
        "USING [#dm_stage_1] AS s ON t.id = s.id AND t.region = s.region",
        "WHEN MATCHED AND EXISTS (SELECT s.total, s.at, s.naive EXCEPT SELECT t.total, t.at, t.naive) "
        "THEN UPDATE SET t.total = s.total, t.at = s.at, t.naive = s.naive",
        "WHEN NOT MATCHED BY TARGET THEN INSERT (id, region, total, at, naive) "
        "VALUES (s.id, s.region, s.total, s.at, s.naive)",
        "OUTPUT $action;",
    ]


def test_merge_of_a_key_only_table_never_updates() -> None:
    sql = str(build_mssql_merge(TARGET, STAGE, ["id", "region"], ["id", "region"], DIALECT))
    assert "WHEN MATCHED" not in sql and "WHEN NOT MATCHED BY TARGET THEN INSERT" in sql


def test_staging_copies_types_without_identity() -> None:
    sql = build_mssql_staging(TARGET, "#dm_stage_1", ["id", "total"], DIALECT)
    assert sql == ("SELECT id, total INTO [#dm_stage_1] FROM sales.[Orders] WHERE 1 = 0 "
                   "UNION ALL SELECT id, total FROM sales.[Orders] WHERE 1 = 0")


def test_insert_only_skips_existing_keys_with_not_exists() -> None:
    sql = compile_sql(build_insert_new(TARGET, STAGE, COLUMNS, ["id", "region"]), DIALECT)
    assert sql.startswith("INSERT INTO sales.[Orders] (id, region, total, at, naive) SELECT [#dm_stage_1].id")
    assert ("WHERE NOT (EXISTS (SELECT * \nFROM sales.[Orders] AS dm_existing \n"
            "WHERE dm_existing.id = [#dm_stage_1].id AND dm_existing.region = [#dm_stage_1].region))") in sql
    assert "IGNORE" not in sql


def test_sync_delete_is_an_anti_join_on_the_seen_keys() -> None:
    seen = temp_table("#dm_seen_1", ["id", "region"])
    delete = compile_sql(build_delete_missing(TARGET, [seen], ["id", "region"]), DIALECT)
    assert delete == ("DELETE FROM sales.[Orders] WHERE NOT (EXISTS (SELECT * \nFROM [#dm_seen_1] \n"
                      "WHERE sales.[Orders].id = [#dm_seen_1].id AND sales.[Orders].region = [#dm_seen_1].region))")
    count = compile_sql(build_count_missing(TARGET, [seen], ["id", "region"]), DIALECT)
    assert count.count("count(*)") == 2
    assert "count(*)" in compile_sql(build_batch_stats(TARGET, STAGE, ["id"]), DIALECT)


def test_duplicate_keys_are_checked_against_the_keys_already_written() -> None:
    # the #temp copies keep the destination's collation, so = compares keys as the destination does
    written = temp_table("#dm_keys_1", ["id", "region"])
    sql = compile_sql(build_key_check(STAGE, written, ["id", "region"], [None, None]), DIALECT)
    assert "SELECT DISTINCT [#dm_stage_1].id AS id, [#dm_stage_1].region AS region" in sql
    assert ("WHERE EXISTS (SELECT * \nFROM [#dm_keys_1] \nWHERE [#dm_stage_1].id = [#dm_keys_1].id "
            "AND [#dm_stage_1].region = [#dm_keys_1].region)") in sql
    repeat = compile_sql(build_key_repeat(STAGE, written, ["id", "region"], [None, None]), DIALECT)
    assert repeat.startswith("SELECT TOP 1 [#dm_stage_1].id, [#dm_stage_1].region, [#dm_keys_1].id")


def test_values_are_encoded_for_pyodbc() -> None:
    encode = mssql_row_encoder([TARGET.c[c] for c in COLUMNS])
    aware = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    row = encode((1, "eu", None, aware, aware))
    # DATETIMEOFFSET keeps the offset (as text: pyodbc would drop tzinfo), DATETIME gets UTC
    assert row[3] == "2024-01-01 12:00:00.000000+02:00" and row[4] == datetime(2024, 1, 1, 10)
    u = uuid.uuid4()
    assert mssql_row_encoder([sa.Column("u", mssql.UNIQUEIDENTIFIER())])((u,)) == (str(u),)
    with pytest.raises(ValueError, match="cannot store the float nan"):
        encode((1, "eu", float("nan"), None, None))


class _OdbcError(Exception):
    pass


@pytest.mark.parametrize(("state", "message", "transient", "row"), [
    ("40001", "[40001] Transaction (Process ID 51) was deadlocked (1205)", True, False),
    ("HYT00", "[HYT00] Query timeout expired (0)", True, False),
    ("08S01", "[08S01] Communication link failure (10054)", True, False),
    ("23000", "[23000] Cannot insert the value NULL into column 'x' (515)", False, True),
    ("22001", "[22001] String or binary data would be truncated (2628)", False, True),
    ("42000", "[42000] The MERGE statement attempted to UPDATE the same row more than once (8672)", False, True),
    ("42S02", "[42S02] Invalid object name 'nope'. (208)", False, False),
])
def test_errors_are_classified(state: str, message: str, transient: bool, row: bool) -> None:
    d = get_dialect("mssql+pyodbc")
    exc = _OdbcError(state, message)
    assert d.is_transient(exc) is transient
    assert d.is_row_error(exc) is row


def test_pyodbc_is_not_needed_to_build_statements() -> None:
    import sys
    assert get_dialect("mssql").name == "mssql"
    assert str(build_mssql_merge(TARGET, STAGE, COLUMNS, ["id"], DIALECT)).startswith("MERGE INTO")  # its upsert
    assert "pyodbc" not in sys.modules or sys.modules["pyodbc"] is not None
