"""The command line against a running system: apply a jobs file, run with --wait, read history.

Given `datamig serve all` (SQLite metadata, in-memory transport) and two fresh PostgreSQL
databases, when a user applies a YAML file, runs its jobs with `datamig run --wait` and
lists the history, then the plan, the exit codes, the rows and the history agree.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e.stack import REPO
from tests.fixtures.stacks import SINGLE_PROCESS

pytestmark = pytest.mark.e2e
ROWS = 3000
BAD_IDS = {17, 2500}

JOBS_YAML = """
projects:
  - name: E2E source
    url: ${E2E_SRC_URL}
  - name: E2E target
    url: ${E2E_DST_URL}
jobs:
  - name: Copy items
    description: every item
    steps:
      - name: items
        project: E2E source
        sql: SELECT id, name, amount FROM items
    destination: {project: E2E target, table: items_copy, mode: upsert}
    max_retries: 0
  - name: Copy with bad rows
    steps:
      - name: items
        project: E2E source
        sql: SELECT id, name, amount FROM items WHERE id <= 3000
    destination: {project: E2E target, table: items_checked, mode: insert_only}
    max_retries: 0
  - name: Broken
    steps:
      - {name: missing, project: E2E source, sql: SELECT id FROM no_such_table}
    destination: {project: E2E target, table: items_copy, mode: insert_only}
    max_retries: 0
"""


def datamig(env: dict, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("datamig")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "services.cli"]
    return subprocess.run([*cmd, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)


def prepare(src_url: str, dst_url: str) -> None:
    src, dst = sa.create_engine(src_url), sa.create_engine(dst_url)
    with src.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(10,2))")
        conn.execute(sa.text("INSERT INTO items VALUES (:id, :name, :amount)"),
                     [{"id": i, "name": f"item {i}", "amount": -1 if i in BAD_IDS else i / 4} for i in range(1, ROWS + 1)])
    with dst.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items_copy (id INT PRIMARY KEY, name TEXT NOT NULL, amount NUMERIC(10,2))")
        conn.exec_driver_sql("CREATE TABLE items_checked (id INT PRIMARY KEY, name TEXT NOT NULL,"
                             " amount NUMERIC(10,2) CHECK (amount >= 0))")
    src.dispose(), dst.dispose()


def count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
    engine.dispose()
    return n


def test_apply_run_and_history_from_the_command_line(tmp_path, pg_database, stacks) -> None:
    src_url, dst_url = pg_database(), pg_database()
    prepare(src_url, dst_url)
    stack = stacks("", amqp_url="memory://", prefix="datamig", services=SINGLE_PROCESS, DM_SECRET_KEY="")
    env = stack.env
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    cli_env |= {"DM_API_URL": stack.base_url, "DM_API_TOKEN": env["DM_ADMIN_TOKEN"],
                "E2E_SRC_URL": src_url, "E2E_DST_URL": dst_url}
    jobs_file = tmp_path / "jobs.yaml"
    jobs_file.write_text(JOBS_YAML)
    # When the file is applied twice, Then the first creates everything and the second changes nothing
    first = datamig(cli_env, "jobs", "apply", "-f", str(jobs_file))
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("+ create") == 5 and 'created job "Copy items"' in first.stdout
    second = datamig(cli_env, "jobs", "apply", "-f", str(jobs_file))
    assert second.returncode == 0 and "0 to create, 0 to update, 5 unchanged" in second.stdout, second.stdout
    listed = datamig(cli_env, "jobs", "list")
    assert listed.returncode == 0 and "Copy items" in listed.stdout and "manual" in listed.stdout

    # When a good job runs with --wait, Then it exits 0 and every row arrived
    ok = datamig(cli_env, "run", "Copy items", "--wait")
    assert ok.returncode == 0, ok.stderr + stack.all_logs()[-3000:]
    assert "completed" in ok.stderr and f"read {ROWS:,}" in ok.stderr
    assert count(dst_url, "items_copy") == ROWS

    # When rows break a constraint, Then partial_success exits 3 and names the failed rows
    partial = datamig(cli_env, "run", "Copy with bad rows", "--wait")
    assert partial.returncode == 3, partial.stderr + stack.all_logs()[-3000:]
    assert "partial_success" in partial.stderr and "row " in partial.stderr
    assert count(dst_url, "items_checked") == ROWS - len(BAD_IDS)

    # When a job cannot run, Then it exits 1 and prints the error
    broken = datamig(cli_env, "run", "Broken", "--wait")
    assert broken.returncode == 1 and "no_such_table" in broken.stderr, broken.stderr

    # Then the history shows each run, filterable by job and status
    history = datamig(cli_env, "history", "Copy items")
    lines = history.stdout.splitlines()
    assert history.returncode == 0 and len(lines) == 2 and "completed" in lines[1] and f"{ROWS:,}" in lines[1]
    failed = datamig(cli_env, "history", "--status", "failed", "--status", "partial_success")
    assert [line.split()[1] for line in failed.stdout.splitlines()[1:]] == ["Broken", "Copy"]

    # And the API's error details carry the failed rows
    with stack.api as api:
        partial_id = api.get("/api/executions", params={"status": "partial_success"}).json()["items"][0]["id"]
        details = api.get(f"/api/executions/{partial_id}/errors", params={"limit": 1}).json()
    assert details["failed_rows_total"] == len(BAD_IDS) and len(details["failed_rows"]) == 1
    row = details["failed_rows"][0]
    assert row["values"]["id"] in BAD_IDS and row["error"] and row["at"]
