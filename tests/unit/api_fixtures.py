"""An API on SQLite metadata and the in-memory transport, for fast tests.

Each test's store starts as a copy of one store migrated once per run (the API's start-up still
runs the migrations, which find it at head): the ~10 migrations are not replayed per test."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import event

from services.api.app import create_app
from shared.bootstrap import build_secret_box, build_store, build_transport
from shared.settings import Settings


ADMIN_TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    overrides.setdefault("admin_token", ADMIN_TOKEN)
    overrides.setdefault("database_url", "")
    return Settings(data_dir=tmp_path, amqp_url="memory://", **overrides)  # type: ignore[arg-type]


_migrated: list[Path] = []  # the store migrated once per run (a file, copied per test)


def fresh_store(data_dir: Path) -> None:
    """Put a freshly migrated, empty metadata store where ``make_settings(data_dir)`` looks for it."""
    if not _migrated:
        directory = Path(tempfile.mkdtemp(prefix="dm-migrated-store-"))
        atexit.register(shutil.rmtree, directory, True)
        build_store(make_settings(directory)).dispose()
        _migrated.append(directory / "datamig.db")
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated[0], data_dir / "datamig.db")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path)
    fresh_store(tmp_path)
    transport, topology = build_transport(settings, name="test")
    app = create_app(settings, transport, store=build_store(settings), box=build_secret_box(settings),
                     topology=topology)
    with TestClient(app, headers=AUTH) as client:
        yield client
    transport.close()


def sqlite_project(client: TestClient, name: str, path: Path) -> int:
    r = client.post("/api/projects", json={"name": name, "engine": "sqlite", "database": str(path)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def job_body(src: int, dst: int, **overrides: object) -> dict:
    body = {
        "name": "Copy users",
        "steps": [{"name": "users", "project_id": src, "sql": "SELECT id, name FROM users"}],
        "destination": {"project_id": dst, "table": "users_copy", "mode": "insert_only"},
    }
    body.update(overrides)
    return body


def refuse_nul_like_postgresql(store: sa.Engine) -> None:
    """Make a SQLite store refuse NUL characters in text and JSON, as PostgreSQL does."""
    @event.listens_for(store, "before_cursor_execute")
    def _check(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        rows = parameters if executemany else [parameters]
        for row in rows or []:
            values = row.values() if isinstance(row, dict) else row
            if any(isinstance(v, str) and ("\x00" in v or "\\u0000" in v) for v in values or []):  # text, jsonb
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")  # psycopg2's words
