"""The zero_dates option (job and source project) and the spelling of MariaDB TIME and BIT values."""
from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from services.extractor.worker import zero_dates_by_project
from shared.connections import ProjectSpec, build_url
from shared.dialects.sourcevalues import bit_digits, mysql_time_text
from shared.jobspec import JobSpec
from shared.snapshots import ProjectSnapshot
from tests.unit.api_fixtures import api, job_body, sqlite_project  # noqa: F401 - fixture


def test_job_zero_dates_round_trips_and_travels_with_the_destination(api: TestClient, tmp_path) -> None:  # noqa: F811
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    r = api.post("/api/jobs", json=job_body(src, dst, zero_dates="null"))
    assert r.status_code == 201, r.text
    job = api.get(f"/api/jobs/{r.json()['id']}").json()
    assert job["zero_dates"] == "null" and job["destination"]["zero_dates"] == "null"
    plain = api.post("/api/jobs", json=job_body(src, dst, name="plain")).json()
    assert plain["zero_dates"] is None and plain["destination"].get("zero_dates") is None
    patched = api.patch(f"/api/jobs/{plain['id']}", json={"zero_dates": "null"})
    assert patched.status_code == 200 and patched.json()["zero_dates"] == "null", patched.text
    assert api.patch(f"/api/jobs/{plain['id']}", json={"enabled": False}).json()["zero_dates"] == "null"


def test_a_bad_zero_dates_value_is_a_422_naming_the_field(api: TestClient, tmp_path) -> None:  # noqa: F811
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    r = api.post("/api/jobs", json=job_body(src, dst, zero_dates="zero"))
    assert r.status_code == 422 and any(e["field"] == "zero_dates" for e in r.json()["detail"]), r.text
    r = api.post("/api/projects", json={"name": "m", "url": "mysql://root@h/db", "options": {"zero_dates": "0"}})
    assert r.status_code == 422 and "zero_dates" in r.text


def test_the_project_option_is_ours_and_never_reaches_the_driver() -> None:
    spec = ProjectSpec(name="m", url="mysql://root@h/db", options={"zero_dates": "null", "charset": "utf8mb4"})
    url = build_url(spec)
    assert "zero_dates" not in url.query and url.query["charset"] == "utf8mb4"


def _job(**options: object) -> JobSpec:
    destination = {"project_id": 2, "table": "t", **options.pop("destination", {})}  # type: ignore[dict-item]
    return JobSpec(name="j", steps=[{"name": "s", "project_id": 1, "sql": "SELECT 1"}], destination=destination,
                   **options)


def test_the_job_option_wins_over_the_project_option() -> None:
    projects = {1: ProjectSnapshot(id=1, name="a", options={"zero_dates": "null"}), 2: ProjectSnapshot(id=2, name="b")}
    assert zero_dates_by_project(_job(), projects) == {1: "null", 2: "keep"}
    assert zero_dates_by_project(_job(zero_dates="keep"), projects) == {1: "keep", 2: "keep"}
    assert zero_dates_by_project(_job(destination={"zero_dates": "null"}), projects) == {1: "null", 2: "null"}


@pytest.mark.parametrize("value, text", [
    (timedelta(hours=838, minutes=59, seconds=59), "838:59:59"), (timedelta(hours=-1, minutes=-30), "-01:30:00"),
    (timedelta(days=1), "24:00:00"), (timedelta(seconds=-0.5), "-00:00:00.500000"),
])
def test_a_time_is_spelled_as_mariadb_shows_it(value: timedelta, text: str) -> None:
    assert mysql_time_text(value) == text


def test_bits_are_padded_to_the_width_or_refused() -> None:
    assert bit_digits(b"\x00\x0a", 10, column="b", target="bit(10)") == "0000001010"
    with pytest.raises(ValueError, match="column 'b'.*1111111111.*bit\\(4\\) holds 4"):
        bit_digits(b"\x03\xff", 4, column="b", target="bit(4)")
