"""POST /api/jobs/{id}/compare through the HTTP API: a cross-engine job (PostgreSQL users joined
on MariaDB) against its PostgreSQL destination. Nothing is written anywhere; a viewer may call it."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.test_api_checks import World, run_sql, world  # noqa: F401 - the fixture
from tests.unit.api_fixtures import api  # noqa: F401 - the fixture
from tests.unit.test_security import make_token

pytestmark = pytest.mark.integration


def _fill_destination(world: World) -> None:
    totals: dict[int, tuple[int, Decimal]] = {}
    for i in range(1, 301):
        uid = i % 40 + 1
        if uid % 4:
            n, total = totals.get(uid, (0, Decimal(0)))
            totals[uid] = (n + 1, total + Decimal(i * 3) / 2)
    values = ", ".join(f"({uid}, 'user {uid}', {n}, {t:.2f})" for uid, (n, t) in sorted(totals.items()))
    run_sql(world.urls["warehouse"], f"INSERT INTO user_totals VALUES {values}")


def _job(world: World) -> int:
    r = world.api.post("/api/jobs", json={"name": "totals", "steps": world.good_steps(),
                                          "destination": world.destination()})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_compare_of_a_cross_engine_job_finds_the_changed_total_and_writes_nothing(world: World) -> None:
    # Given a two-step job (PostgreSQL, then MariaDB over @result1) whose destination holds its result
    _fill_destination(world)
    job = _job(world)
    before = world.snapshots()
    # When it is compared
    r = world.api.post(f"/api/jobs/{job}/compare", json={})
    # Then both sides are equal, counted, and nothing was written
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["equal"] is True and body["source_rows"] == body["destination_rows"] == 30
    assert (body["only_in_source"], body["only_in_destination"], body["different"]) == (0, 0, 0)
    assert body["key"] == ["id"] and body["samples"] == [] and body["seconds"] >= 0
    # When one total changes in the destination, it is named by key with both values
    run_sql(world.urls["warehouse"], "UPDATE user_totals SET total = total + 0.01 WHERE id = 7",
            "DELETE FROM user_totals WHERE id = 2")
    before = world.snapshots()
    body = world.api.post(f"/api/jobs/{job}/compare").json()
    assert (body["only_in_source"], body["only_in_destination"], body["different"]) == (1, 0, 1)
    by_key = {s["key"]["id"]: s for s in body["samples"]}
    assert by_key[7]["columns"] == ["total"]
    assert Decimal(by_key[7]["destination"]["total"]) - Decimal(by_key[7]["source"]["total"]) == Decimal("0.01")
    assert by_key[2]["destination"] is None
    assert world.api.post(f"/api/jobs/{job}/compare", json={"limit": 1}).json()["samples"][0]["key"] == {"id": 2}
    assert world.snapshots() == before


def test_compare_bad_input_and_roles(world: World) -> None:
    _fill_destination(world)
    job = _job(world)
    r = world.api.post(f"/api/jobs/{job}/compare", json={"limit": 5, "colour": "red"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "colour"
    r = world.api.post(f"/api/jobs/{job}/compare", json={"limit": 10_001})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "limit"
    assert world.api.post("/api/jobs/999999/compare", json={}).status_code == 404
    viewer = {"Authorization": f"Bearer {make_token(world.api, 'viewer')}"}
    assert world.api.post(f"/api/jobs/{job}/compare", json={"limit": 0}, headers=viewer).status_code == 200
    run_sql(world.urls["warehouse"], "DROP TABLE user_totals")
    r = world.api.post(f"/api/jobs/{job}/compare", json={})
    assert r.status_code == 400 and "user_totals does not exist" in r.json()["detail"]
