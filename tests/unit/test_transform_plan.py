"""The transform's SQL: references found like a step's, planned as stream or materialised (no database)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.cliapp.specfile import parse_document
from shared.extract import flow
from shared.jobspec import JobSpec, StepSpec
from shared.transform import plan_transform, transform_problems
from shared.transform.plan import engine_sql, user_words


def steps(n: int) -> list[StepSpec]:
    return [StepSpec(name=f"s{i}", project_id=1, sql="SELECT 1 AS id") for i in range(1, n + 1)]


def job(**extra: object) -> dict:
    return {"name": "j", "steps": [{"name": "s1", "project_id": 1, "sql": "SELECT 1 AS id"}],
            "destination": {"project_id": 2, "table": "t"}, **extra}


def test_a_projection_of_the_last_result_read_once_is_streamed() -> None:
    plan = plan_transform("SELECT id, lower(email) AS email FROM @result3 WHERE id > 10", steps(3))
    assert (plan.streamed, plan.materialised, plan.references) == (3, (), (3,))


@pytest.mark.parametrize("sql, materialised", [
    ("SELECT * FROM @result2 a JOIN @result3 b USING (id)", (2, 3)),   # join of two results
    ("SELECT * FROM @result3 a JOIN @result3 b USING (id)", (3,)),     # the last result read twice
    ("SELECT count(*) FROM @result1", (1,)),                          # an earlier step only
])
def test_anything_else_materialises_every_result_it_reads(sql: str, materialised: tuple[int, ...]) -> None:
    plan = plan_transform(sql, steps(3))
    assert plan.streamed is None and plan.materialised == materialised


def test_text_that_only_looks_like_a_reference_is_not_one() -> None:
    sql = "SELECT '@result1' AS a, \"@result2\" AS b /* @result1 */ FROM @result3 -- @result2"
    assert plan_transform(sql, steps(3)).streamed == 3
    assert engine_sql(sql + ";") == sql.replace("FROM @result3 -- @result2", 'FROM "dm_result3"')


def test_problems_name_the_transform_not_a_step() -> None:
    assert transform_problems("SELECT * FROM @result4", steps(3)) == [
        "the transform: @result4 refers to a missing step (the job has 3 steps)"]
    assert transform_problems("SELECT 1; SELECT 2", steps(3))[0].startswith("the transform: holds 2 statements")
    assert transform_problems("DELETE FROM @result1", steps(3))[0].startswith("the transform: starts with 'DELETE'")
    assert transform_problems("SELECT 1 AS x", steps(3))[0].startswith("the transform: reads no step result")
    assert transform_problems("FROM @result1 SELECT id", steps(3)) == []


def test_engine_messages_speak_of_results_not_of_internal_names() -> None:
    assert user_words('Referenced column "x" not found in "dm_result12" or dm_result3') == \
        'Referenced column "x" not found in @result12 or @result3'


def test_job_transform_is_optional_and_blank_means_none() -> None:
    assert JobSpec.model_validate(job()).transform is None
    assert JobSpec.model_validate(job(transform="  \n")).transform is None
    sql = "SELECT id AS user_id FROM @result1"
    assert JobSpec.model_validate(job(transform=sql)).transform == sql
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(job(transform=42))
    assert info.value.errors()[0]["loc"] == ("transform",)


def test_jobs_files_carry_the_transform() -> None:
    doc = {"jobs": [{"name": "Copy", "steps": [{"name": "s1", "project": "Src", "sql": "SELECT 1 AS id"}],
                     "destination": {"project": "Dst", "table": "t"},
                     "transform": "SELECT id * 2 AS id FROM @result1"}]}
    parsed = parse_document(doc, path="f.yaml", env={})
    assert parsed.jobs[0].spec.transform == "SELECT id * 2 AS id FROM @result1"
    assert parsed.jobs[0].named_dump()["transform"] == "SELECT id * 2 AS id FROM @result1"


def test_the_flow_places_the_transform_after_the_steps_it_reads() -> None:
    out = flow(steps(3), {1: {"name": "P", "engine": "postgresql"}},
               transform="SELECT * FROM @result1 JOIN @result3 USING (id) JOIN @result9 USING (id)")
    assert out["transform"] == {"id": "transform", "references": [1, 3]}
    assert flow(steps(1), {})["transform"] is None
