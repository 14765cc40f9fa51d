"""Planning, reference checks, flow graph and generated SQL (no database)."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql

from shared.dialects import get_dialect
from shared.extract import check_references, flow
from shared.dialects.csvstream import CsvStream
from shared.extract.planner import build_sql, plan
from shared.extract.preview import json_safe
from shared.extract.runner import check_steps
from shared.jobspec import StepSpec
from shared.types import Column


def steps(*spec: tuple[int, str]) -> list[StepSpec]:
    return [StepSpec(name=f"s{i}", project_id=p, sql=sql) for i, (p, sql) in enumerate(spec, start=1)]


def test_check_references_names_the_step_for_same_later_and_missing() -> None:
    job = steps((1, "select 1 from @result1"), (1, "select * from @result3"), (1, "select * from @result7"))
    problems = check_references(job)
    assert problems[0].startswith("step 1 's1': @result1 refers to the step itself")
    assert problems[1].startswith("step 2 's2': @result3 refers to a later step")
    assert problems[2].startswith("step 3 's3': @result7 refers to a missing step")


def test_valid_references_give_no_problems() -> None:
    assert check_references(steps((1, "select 1"), (2, "select * from @result1 where x = '@result9'"))) == []


def test_check_steps_rejects_writes_and_several_statements() -> None:
    job = steps((1, "update t set a = 1"), (1, "select 1; delete from t"))
    engines = {1: sa.create_engine("sqlite://")}
    problems = check_steps(job, engines)
    assert "starts with 'UPDATE'" in problems[0]
    assert "holds 2 statements" in problems[1]


def test_same_project_chain_is_pushed_down_as_ctes() -> None:
    job = steps((1, "select 1 as id"), (1, "select * from @result1"), (1, "select * from @result2 r join @result1 o using (id)"))
    p = plan(job, 3)
    assert p.ctes == [1, 2] and p.temps == {} and p.temp_count() == 0
    sql = build_sql(job, p, {1: "dm_result1", 2: "dm_result2"}, flavor="postgresql")
    assert sql.startswith("WITH dm_result1 AS (\nselect 1 as id\n),\ndm_result2 AS (\nselect * from dm_result1\n)")
    assert sql.endswith("select * from dm_result2 r join dm_result1 o using (id)")


def test_cross_project_reference_becomes_a_temp_table_plan() -> None:
    job = steps((1, "select 1 as id"), (2, "select * from @result1"), (1, "select * from @result2 join @result1 using (id)"))
    p = plan(job, 3)
    assert p.ctes == [1] and list(p.temps) == [2]
    assert p.temps[2].project_id == 2 and list(p.temps[2].temps) == [1]
    assert p.temp_count() == 2


def test_user_with_list_is_merged_after_ours() -> None:
    job = steps((1, "select 1 as id -- trailing comment"), (1, "WITH x AS (select * from @result1) select * from x;"))
    sql = build_sql(job, plan(job, 2), {1: "dm_result1"})
    assert sql == "WITH dm_result1 AS (\nselect 1 as id\n),\nx AS (select * from dm_result1) select * from x"


def test_unreferenced_steps_are_not_planned() -> None:
    job = steps((1, "select 1"), (2, "select 2"), (1, "select 3"))
    assert plan(job, 3).ctes == [] and plan(job, 3).temps == {}


def test_flow_nodes_and_edges() -> None:
    job = steps((1, "select 1"), (2, "select * from @result1"), (3, "select * from @result2, @result1"))
    graph = flow(job, {1: {"name": "Users", "engine": "postgresql"}, 2: {"name": "Orders", "engine": "mysql"}})
    assert [n["project_name"] for n in graph["nodes"]] == ["Users", "Orders", None]
    assert graph["nodes"][1] == {"id": 2, "step": 2, "name": "s2", "project_id": 2, "project_name": "Orders",
                                 "engine": "mysql"}
    assert graph["edges"] == [{"from": 1, "to": 2}, {"from": 1, "to": 3}, {"from": 2, "to": 3}]


COLUMNS = [Column("id", "bigint"), Column("Name", "text"), Column("amount", "decimal", precision=12, scale=2),
           Column("at", "timestamptz"), Column("uid", "uuid")]


def test_temp_table_ddl_per_engine() -> None:
    pg = get_dialect("postgresql").create_temp_table_sql(postgresql.dialect(), "dm_result1_ab", COLUMNS)
    assert pg.startswith("CREATE TEMPORARY TABLE dm_result1_ab (")
    assert '"Name" TEXT' in pg and "amount NUMERIC(12, 2)" in pg and "at TIMESTAMP WITH TIME ZONE" in pg
    my = get_dialect("mysql").create_temp_table_sql(mysql.dialect(), "dm_result1_ab", COLUMNS)
    assert my.startswith("CREATE TEMPORARY TABLE dm_result1_ab (") and "uid CHAR(36)" in my
    assert "at DATETIME(6)" in my


def test_sql_server_temp_tables_probe_and_types() -> None:
    d = get_dialect("mssql")
    name = d.temp_table_name(2, "ab12")
    assert name == "#dm_result2_ab12"
    ddl = d.create_temp_table_sql(mssql.dialect(), name, COLUMNS)
    assert ddl.startswith("CREATE TABLE [#dm_result2_ab12] (") and "amount DECIMAL(12, 2)" in ddl and "[Name] NVARCHAR(max)" in ddl
    assert d.probe_sql("select 1 as a") == "SELECT TOP 0 * FROM (\nselect 1 as a\n) AS dm_probe"
    cols = d.describe_result([("a", int, None, 10, 10, 0, True), ("b", Decimal, None, 12, 12, 2, True),
                              ("c", dt.datetime, None, 23, 23, 3, True)], [])
    assert [(c.type, c.precision) for c in cols] == [("bigint", None), ("decimal", 12), ("timestamp", None)]
    assert d.sql_flavor == "mssql" and d.classify_error(Exception("08S01", "link failure")) == "connection"


def test_csv_stream_keeps_null_and_empty_string_apart() -> None:
    stream = CsvStream([[(1, None, "", 'a"b')], [(2, "x,y", "\n", None)]], [None, None, None, None])
    text = stream.read(3) + stream.read()
    assert text == b'"1",,"","a""b"\n"2","x,y","\n",\n' and stream.rows == 2


def test_json_safe_values() -> None:
    values = [Decimal("1.50"), dt.date(2024, 1, 2), dt.timedelta(seconds=90), b"\x00", uuid.UUID(int=1), float("nan")]
    assert [json_safe(v) for v in values] == ["1.50", "2024-01-02", 90.0, "AA==", str(uuid.UUID(int=1)), "nan"]
