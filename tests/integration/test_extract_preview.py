"""Preview and source validation: every failure kind is reported per step, and nothing is written."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shared.connections import create_db_engine
from shared.extract import preview, validate_sources
from shared.jobspec import StepSpec

pytestmark = pytest.mark.integration

UNREACHABLE = "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def projects(pg_url: str, mysql_url: str) -> Iterator[dict[int, sa.Engine]]:
    pg, my, down = create_db_engine(pg_url), create_db_engine(mysql_url), create_db_engine(UNREACHABLE)
    with pg.begin() as c:
        c.exec_driver_sql("CREATE TABLE users (user_id int, name text)")
        c.exec_driver_sql("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 250) g")
    with my.begin() as c:
        c.exec_driver_sql("CREATE TABLE orders (user_id int, amount decimal(8,2))")
        c.exec_driver_sql("INSERT INTO orders VALUES (1, 9.99), (2, 5.00)")
    yield {1: pg, 2: my, 3: down}
    for e in (pg, my, down):
        e.dispose()


def snapshot(projects: dict[int, sa.Engine]) -> tuple:
    """Tables and row counts of the reachable sources: proof that nothing was written."""
    with projects[1].connect() as c:
        pg = (c.exec_driver_sql("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                                "'public'::regnamespace").scalar(), c.exec_driver_sql("SELECT count(*) FROM users").scalar())
    with projects[2].connect() as c:
        my = (c.exec_driver_sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
              .scalar(), c.exec_driver_sql("SELECT count(*) FROM orders").scalar())
    return pg, my


FAILING = [
    StepSpec(name="users", project_id=1, sql="SELECT user_id, name FROM users ORDER BY user_id"),
    StepSpec(name="typo", project_id=1, sql="SELECT user_id FROM users WHERE"),
    StepSpec(name="missing table", project_id=2, sql="SELECT * FROM no_such_table"),
    StepSpec(name="offline", project_id=3, sql="SELECT 1 AS one"),
    StepSpec(name="bad reference", project_id=2, sql="SELECT * FROM @result9"),
    StepSpec(name="joined", project_id=2, sql="SELECT u.user_id, u.name, o.amount FROM @result1 u "
                                              "LEFT JOIN orders o ON o.user_id = u.user_id"),
]


def test_preview_reports_each_failure_kind_per_step_and_writes_nothing(projects) -> None:
    before = snapshot(projects)
    result = preview(FAILING, projects, limit=5, timeout_s=20)
    by_name = {r["name"]: r for r in result}
    assert by_name["users"]["error"] is None and by_name["users"]["row_count"] == 250
    assert by_name["users"]["rows"] == [[i, f"u{i}"] for i in range(1, 6)]
    assert by_name["users"]["columns"] == [{"name": "user_id", "type": "int"}, {"name": "name", "type": "text"}]
    assert "step 2 'typo'" in by_name["typo"]["error"] and "syntax error" in by_name["typo"]["error"]
    assert "step 3 'missing table'" in by_name["missing table"]["error"]
    assert "no_such_table" in by_name["missing table"]["error"] and "doesn't exist" in by_name["missing table"]["error"]
    assert "step 4 'offline'" in by_name["offline"]["error"] and "connection failed" in by_name["offline"]["error"]
    assert "@result9 refers to a missing step" in by_name["bad reference"]["error"]
    joined = by_name["joined"]
    assert joined["error"] is None and joined["row_count"] == 250 and len(joined["rows"]) == 5
    assert {"name": "amount", "type": "decimal"} in joined["columns"]
    assert all(isinstance(r["elapsed_ms"], int) for r in result)
    assert snapshot(projects) == before


def test_validate_sources_lists_each_check_and_writes_nothing(projects) -> None:
    before = snapshot(projects)
    checks, final = validate_sources(FAILING, projects, timeout_s=20)
    failed = {c["check"]: c["message"] for c in checks if not c["ok"]}
    assert any("project 3 is unreachable" in m for m in failed.values())
    assert "@result9 refers to a missing step" in failed["steps and references"]
    assert "syntax error" in failed["step 2 'typo' parses and plans"]
    assert "no_such_table" in failed["step 3 'missing table' parses and plans"]
    assert "project 3 is unreachable" in failed["step 4 'offline' parses and plans"]
    assert "@result9" in failed["step 5 'bad reference' parses and plans"]
    passed = {c["check"] for c in checks if c["ok"]}
    assert {"step 1 'users' parses and plans", "step 6 'joined' parses and plans"} <= passed
    assert final is not None and [c.name for c in final] == ["user_id", "name", "amount"]
    assert snapshot(projects) == before


def test_validate_sources_passes_a_good_cross_engine_job(projects) -> None:
    steps = [FAILING[0], FAILING[5]]
    checks, final = validate_sources(steps, projects)
    assert all(c["ok"] for c in checks), checks
    assert [c.type for c in final] == ["int", "text", "decimal"]
