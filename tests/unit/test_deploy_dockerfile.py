"""deploy/Dockerfile builds one non-root image whose entrypoint is the `datamig` script."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions()


def _final_stage(steps):
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_every_stage_starts_from_python_3_11_slim(steps):
    args = dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)
    bases = [a.split()[0].replace("${PYTHON_VERSION}", args["PYTHON_VERSION"]) for k, a in steps if k == "FROM"]
    assert bases and all(b == "python:3.11-slim" for b in bases)


def test_the_entrypoint_is_the_datamig_console_script(steps):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = [json.loads(a) for k, a in steps if k == "ENTRYPOINT"]
    assert entrypoint == ["datamig"] and "datamig" in scripts


def test_the_image_runs_as_a_non_root_user(steps):
    users = [a for k, a in _final_stage(steps) if k == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_the_project_is_installed_with_pip_from_pyproject(steps):
    runs = " ".join(a for k, a in steps if k == "RUN")
    assert "pip install ." in runs
    assert any(k == "COPY" and "pyproject.toml" in a for k, a in steps)


def test_sql_server_driver_is_optional_and_documented(steps):
    final = _final_stage(steps)
    assert ("ARG", "INSTALL_MSSQL=0") in final
    run = " ".join(a for k, a in final if k == "RUN")
    assert 'if [ "$INSTALL_MSSQL" = "1" ]' in run and "msodbcsql18" in run and "unixodbc" in run
    assert "Without it" in DOCKERFILE.read_text() and "mssql" in DOCKERFILE.read_text()


def test_exposed_ports_match_the_compose_file(steps):
    from tests.unit.test_deploy_compose import load_compose

    services = load_compose()["services"]
    exposed = {int(p) for k, a in steps if k == "EXPOSE" for p in a.split()}
    assert int(services["api"]["environment"]["DM_API_PORT"]) in exposed
    assert int(services["loader"]["environment"]["DM_METRICS_PORT"]) in exposed


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "data/", "tests/"} <= ignored
