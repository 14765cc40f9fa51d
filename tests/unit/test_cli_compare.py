"""``datamig compare JOB`` against the real API app, SQLite projects (checksums by SQLite functions)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from tests.unit.api_fixtures import api, job_body, sqlite_project  # noqa: F401 - fixture
from tests.unit.test_cli_commands import cli


def _db(path: Path, rows: list[tuple]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score NUMERIC(6,2), seen DATETIME)")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", rows)


ROWS = [(i, f"user {i}", f"{i}.50", f"2024-01-02 03:04:{i % 60:02d}.000001") for i in range(1, 51)]


def test_compare_exits_0_when_equal_and_3_naming_the_keys_that_differ(api: TestClient, tmp_path: Path) -> None:
    # Given a SQLite job whose destination holds the same rows
    _db(tmp_path / "s.db", ROWS)
    _db(tmp_path / "d.db", ROWS)
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    body = job_body(src, dst, steps=[{"name": "users", "project_id": src, "sql": "SELECT * FROM users"}],
                    destination={"project_id": dst, "table": "users", "mode": "upsert"})
    assert api.post("/api/jobs", json=body).status_code == 201
    code, out, err = cli(api, "compare", "Copy users")
    assert (code, err) == (0, "") and "EQUAL" in out and "source rows 50, destination rows 50" in out
    # When one value gains a trailing space and one row is missing, then exit code 3 names both keys
    with sqlite3.connect(tmp_path / "d.db") as conn:
        conn.execute("UPDATE users SET name = 'user 4 ' WHERE id = 4")
        conn.execute("DELETE FROM users WHERE id = 9")
    code, out, _ = cli(api, "compare", "Copy users")
    assert code == 3 and "DIFFERENT" in out and "only in source 1, only in destination 0, different 1" in out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "id=4 different name name='user 4' name='user 4 '" in lines and "id=9 only in source -" in lines
    code, out, _ = cli(api, "compare", "Copy users", "--json", "--limit", "1")
    assert code == 3 and len(json.loads(out)["samples"]) == 1
    code, _, err = cli(api, "compare", "Copy users", "--limit", "-1")
    assert code == 2 and "--limit" in err
