"""Helpers for the end-to-end tests that drive a running stack over HTTP.

Every HTTP call goes through ``Stack.api`` (which carries the API token once auth is on),
so these helpers keep working when bearer-token auth lands.

- :class:`Databases`: the factory of fresh PostgreSQL / MariaDB databases
  (tests/fixtures/databases.py; ``tests.conftest`` exposes it as fixtures).
- :func:`running_stack`: API, scheduler, extractor and loader as OS processes on RabbitMQ
  with PostgreSQL metadata, worker threads configurable.
- :class:`Client`: projects, jobs, executions, waiting for several executions at once.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.e2e.stack import FINISHED, Stack
from tests.fixtures.databases import Databases  # noqa: F401 - the one database factory, imported from here too
from tests.fixtures.stacks import boot


def datasets_dir() -> Path:
    """The shared sample datasets: ``$DM_TEST_DATASETS`` or ``../shared/datasets`` next to the repo."""
    override = os.environ.get("DM_TEST_DATASETS")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "shared" / "datasets"


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """A connection in a transaction that commits at the end."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).all()]


@contextmanager
def running_stack(log_dir: Path, metadata_url: str, prefix: str, **extra: str) -> Iterator[Stack]:
    """The four services as separate processes (RabbitMQ, PostgreSQL metadata); stopped at the end.
    (The ``stacks`` / ``module_stacks`` fixtures of tests/conftest.py do the same as factories.)"""
    stack = boot(log_dir, metadata_url=metadata_url, prefix=prefix, **extra)
    try:
        yield stack
    finally:
        stack.stop()


def project_body(name: str, url: str) -> dict:
    """A project from an SQLAlchemy URL; MariaDB ones with host/port/... to exercise both forms."""
    u = make_url(url)
    if u.get_backend_name() == "mysql":
        return {"name": name, "engine": "mysql", "host": u.host, "port": u.port, "database": u.database,
                "username": u.username, "password": u.password or ""}
    if u.get_backend_name() == "sqlite":
        return {"name": name, "engine": "sqlite", "database": u.database}
    return {"name": name, "url": url}


class Client:
    """What a user does over HTTP, with the answers checked."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = stack.api

    def close(self) -> None:
        self.http.close()

    def project(self, name: str, url: str) -> int:
        r = self.http.post("/api/projects", json=project_body(name, url))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def create_job(self, body: dict) -> int:
        r = self.http.post("/api/jobs", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def put_job(self, job_id: int, body: dict) -> dict:
        r = self.http.put(f"/api/jobs/{job_id}", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def execute(self, job_id: int) -> int:
        r = self.http.post(f"/api/jobs/{job_id}/execute")
        assert r.status_code == 202, r.text
        return r.json()["execution_id"]

    def execution(self, execution_id: int) -> dict:
        r = self.http.get(f"/api/executions/{execution_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def errors(self, execution_id: int) -> dict:
        r = self.http.get(f"/api/executions/{execution_id}/errors")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_all(self, execution_ids: Iterable[int], timeout_s: float = 120) -> dict[int, dict]:
        """Wait until every execution has finished; returns them by id."""
        pending, done = list(execution_ids), {}
        deadline = time.monotonic() + timeout_s
        while pending:
            for eid in list(pending):
                body = self.execution(eid)
                if body["status"] in FINISHED:
                    done[eid] = body
                    pending.remove(eid)
            if not pending:
                break
            if time.monotonic() > deadline:
                states = {eid: self.execution(eid)["status"] for eid in pending}
                raise AssertionError(f"executions not finished in {timeout_s}s: {states}\n"
                                     f"{self.stack.all_logs()[-6000:]}")
            time.sleep(0.1)
        return done

    def run(self, job_id: int, timeout_s: float = 120) -> dict:
        eid = self.execute(job_id)
        return self.wait_all([eid], timeout_s)[eid]


def counts(execution: dict) -> dict[str, Any]:
    """The row counts of an execution, as a user reads them in the history."""
    return {k: execution[k] for k in ("rows_read", "rows_inserted", "rows_updated", "rows_skipped",
                                      "rows_deleted", "rows_failed")}
