"""Preview counts rows up to 10,000 and says when more exist (``truncated``)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from tests.unit.api_fixtures import api, sqlite_project  # noqa: F401

NUMBERS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) SELECT i FROM n"


def test_preview_says_when_the_row_count_was_capped(api: TestClient, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "src.db"
    sqlite3.connect(path).close()
    src = sqlite_project(api, "src", path)
    for rows, count, truncated in [(30_000, 10_000, True), (10_000, 10_000, False), (9_999, 9_999, False)]:
        r = api.post("/api/jobs/preview", params={"limit": 5},
                     json={"steps": [{"name": "numbers", "project_id": src, "sql": NUMBERS.format(rows=rows)}]})
        assert r.status_code == 200, r.text
        step = r.json()["steps"][0]
        assert (step["row_count"], step["truncated"], len(step["rows"])) == (count, truncated, 5), rows
