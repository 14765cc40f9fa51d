"""The source row estimate behind the ETA: PostgreSQL's planner, only where it means something."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared.estimate import planner_estimate
from shared.jobspec import StepSpec

pytestmark = pytest.mark.integration


def test_postgresql_gives_the_planners_estimate_of_a_last_step_on_its_own_database(pg_url: str, mysql_url: str) -> None:
    pg = sa.create_engine(pg_url)
    my = sa.create_engine(mysql_url)
    with pg.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE many (id INT PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO many SELECT g FROM generate_series(1, 5000) g")
    with pg.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE many")
    try:
        one = StepSpec(name="All of many", project_id=1, sql="SELECT id FROM many")
        assert planner_estimate([one], {1: pg}) == {"rows": 5000, "source": "PostgreSQL planner estimate (EXPLAIN) of step “All of many”"}
        half = StepSpec(name="Half", project_id=1, sql="SELECT id FROM many WHERE id <= 2500;")
        assert 2000 <= planner_estimate([half], {1: pg})["rows"] <= 3000
        # a last step that joins an earlier result, another engine, a broken query: no estimate, no error
        joined = StepSpec(name="Join", project_id=1, sql="SELECT r.id FROM @result1 r")
        assert planner_estimate([one, joined], {1: pg}) == {}
        assert planner_estimate([StepSpec(name="My", project_id=2, sql="SELECT 1 AS id")], {2: my}) == {}
        assert planner_estimate([StepSpec(name="Bad", project_id=1, sql="SELECT nope FROM many")], {1: pg}) == {}
    finally:
        pg.dispose()
        my.dispose()
