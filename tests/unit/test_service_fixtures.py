"""The test fixtures' choice of services: containers only where no address was given, and the
SQL Server suite's single end-of-run line when it cannot run (checked in a child pytest run)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import services

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_docker_probe(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(services, "_docker", None)
    yield monkeypatch


def test_no_container_replaces_an_address_the_run_was_given(fresh_docker_probe) -> None:
    fresh_docker_probe.setenv("DM_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/postgres")
    problem = services.start_for_default("PostgreSQL", "postgresql+psycopg2://postgres@127.0.0.1:1/postgres",
                                         services.sql_ready)
    assert problem == "DM_TEST_PG_URL was given, so no container is started for it"


def test_containers_can_be_forbidden(fresh_docker_probe) -> None:
    fresh_docker_probe.delenv("DM_TEST_AMQP_URL", raising=False)
    fresh_docker_probe.setenv("DM_TEST_CONTAINERS", "off")
    assert services.start_for_default("RabbitMQ", "amqp://guest:guest@127.0.0.1:1/%2F",
                                      services.amqp_ready) == "DM_TEST_CONTAINERS=off"


def test_each_service_has_an_image_and_readiness_probe() -> None:
    assert {name: image.image for name, image in services.IMAGES.items()} == {
        "PostgreSQL": "postgres:15", "MariaDB": "mariadb:10.11", "RabbitMQ": "rabbitmq:3",
        "SQL Server": "mcr.microsoft.com/mssql/server:2022-latest"}
    assert set(services.READY) == {"PostgreSQL", "MariaDB", "RabbitMQ"}
    assert services.IMAGES["SQL Server"].env["ACCEPT_EULA"] == "Y"


def test_without_sql_server_the_suite_skips_with_one_summary_line() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "DM_TEST_MSSQL_URL", "PYTEST_ADDOPTS")}
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/integration/mssql", "-q", "-p", "no:cacheprovider",
                           "-k", "type_table or snapshot"], cwd=ROOT, env={**clean, "DM_TEST_CONTAINERS": "off"},
                          capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("SQL Server suite:")]
    assert done.returncode == 0, done.stdout[-2000:]
    assert len(lines) == 1 and re.match(r"SQL Server suite: \d+ tests skipped \(they run only where Docker or "
                                        r"DM_TEST_MSSQL_URL exists\): .*DM_TEST_CONTAINERS=off", lines[0]), lines


def test_under_ci_a_given_sql_server_that_cannot_be_reached_fails_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures import mssql

    monkeypatch.setattr(mssql, "_state", {})
    monkeypatch.setenv("DM_TEST_MSSQL_URL", "mssql+pyodbc://sa:pw@127.0.0.1:1/master?driver=ODBC+Driver+18+for+SQL+Server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="SQL Server is not available: .*a missing service is a failure"):
        mssql.require_mssql()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="SQL Server is not available"):
        mssql.require_mssql()
