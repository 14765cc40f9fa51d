"""Jobs files accept ``alerts`` (channels by id), checked like the API checks them."""
from __future__ import annotations

import pytest

from services.cliapp.specfile import SpecFileError, parse_document


def job(**overrides: object) -> dict:
    return {"name": "Copy", "steps": [{"name": "s1", "project": "Src", "sql": "SELECT 1 AS id"}],
            "destination": {"project": "Dst", "table": "t"}, **overrides}


def test_a_jobs_file_carries_alert_rules_to_the_api_body() -> None:
    alerts = {"channels": [3, 4], "on": ["failed", "slow"], "slow_factor": 2.5, "disable_after_failures": 5}
    fj = parse_document({"jobs": [job(alerts=alerts)]}, path="f.yaml", env={}).jobs[0]
    assert fj.to_spec({"Src": 1, "Dst": 2}).model_dump(mode="json")["alerts"] == alerts
    assert fj.named_dump()["alerts"] == alerts
    assert parse_document({"jobs": [job()]}, path="f.yaml", env={}).jobs[0].named_dump()["alerts"] is None


@pytest.mark.parametrize("alerts, field", [
    ({"on": ["exploded"]}, "alerts.on[0]"),
    ({"slow_factor": 0.5}, "alerts.slow_factor"),
    ({"channels": ["Ops Slack"]}, "alerts.channels[0]"),
])
def test_bad_alert_rules_in_a_file_name_the_field(alerts: dict, field: str) -> None:
    with pytest.raises(SpecFileError) as exc:
        parse_document({"jobs": [job(alerts=alerts)]}, path="jobs.yaml", env={})
    assert exc.value.field_path == field


def test_the_apply_plan_updates_a_job_whose_alert_rules_differ_and_leaves_equal_ones() -> None:
    from services.cliapp.plan import compute_plan
    from tests.unit.test_cli_plan import file_spec, server_job, server_projects

    rules = {"channels": [3], "on": ["failed"], "slow_factor": 3.0, "disable_after_failures": None}
    same = compute_plan(file_spec(alerts=rules), server_projects=server_projects(),
                        server_jobs=[server_job(alerts=rules)])
    assert same[2].action == "unchanged"
    changed = compute_plan(file_spec(alerts={**rules, "on": ["failed", "slow"]}), server_projects=server_projects(),
                           server_jobs=[server_job(alerts=rules)])
    assert (changed[2].action, changed[2].fields) == ("update", ("alerts.on",))
