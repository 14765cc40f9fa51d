"""GET /api/schedule/preview: the description and next runs the job editor shows under a schedule."""
from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient

from tests.unit.api_fixtures import api  # noqa: F401 - fixture: the API on SQLite and memory://, editor token


def test_schedule_preview_gives_the_description_and_next_five_runs_in_the_time_zone(api: TestClient) -> None:
    r = api.get("/api/schedule/preview", params={"schedule": "0 2 * * *", "timezone": "Europe/Berlin"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["description"] == "Daily at 02:00" and body["timezone"] == "Europe/Berlin"
    runs = [datetime.fromisoformat(x) for x in body["next_runs"]]
    assert len(runs) == 5 and runs == sorted(runs)
    assert all((t.hour, t.minute) == (2, 0) and t.utcoffset() is not None for t in runs)


def test_schedule_preview_without_a_schedule_means_manual_only(api: TestClient) -> None:
    body = api.get("/api/schedule/preview", params={"schedule": ""}).json()
    assert body["next_runs"] == [] and "Manual" in body["description"]


def test_schedule_preview_names_the_invalid_fields(api: TestClient) -> None:
    r = api.get("/api/schedule/preview", params={"schedule": "0 2 * *", "timezone": "Mars/Olympus"})
    assert r.status_code == 422
    fields = {e["field"]: e["msg"] for e in r.json()["detail"]}
    assert "5 fields" in fields["schedule"] and "unknown time zone" in fields["timezone"]
