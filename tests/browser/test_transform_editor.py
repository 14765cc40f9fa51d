"""The editor's "Transformation (optional)" field: typed, previewed, drawn, saved and run, in Chromium.

Given the system as one process and a PostgreSQL database, a user writes a one-step job,
adds a transformation, previews it (the transformed columns and rows show), sees it in
the flow between the step and the destination, saves, runs it, and finds the
transformed rows in the destination table; reopening the job shows the saved SQL.
"""
from __future__ import annotations

import re
import time

import httpx
import pytest
import sqlalchemy as sa

from tests.browser.conftest import Databases, Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
TRANSFORM = ("SELECT id AS user_id, lower(email) AS email,\n"
             "       CASE WHEN orders > 10 THEN 'gold' ELSE 'std' END AS tier\nFROM @result1\nWHERE id <> 2")
EXPECTED = [(1, "ann@x.org", "gold"), (3, "zoë@ünï.org", "std"), (4, None, "gold")]


@pytest.fixture(scope="module")
def source(databases: Databases) -> str:
    url = databases.postgresql()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (id INT PRIMARY KEY, email TEXT, orders INT NOT NULL)")
        conn.exec_driver_sql("INSERT INTO users VALUES (1, 'Ann@X.org', 12), (2, 'bob@x.org', 1), "
                             "(3, 'ZOË@Ünï.org', 0), (4, NULL, 40)")
        conn.exec_driver_sql("CREATE TABLE tiers (user_id INT PRIMARY KEY, email TEXT, tier TEXT NOT NULL)")
    engine.dispose()
    return url


def test_a_user_adds_a_transformation_previews_it_and_runs_it(web: Page, web_api: httpx.Client, source: str) -> None:
    from playwright.sync_api import expect

    u = sa.engine.make_url(source)
    r = web_api.post("/api/projects", json={"name": "Transform PG", "engine": "postgresql", "host": u.host, "port": u.port,
                                            "database": u.database, "username": u.username, "password": u.password or ""})
    assert r.status_code == 201, r.text
    page = web.open("#/jobs/new")
    # Given a one-step job written in the editor
    page.get_by_label("Name (required)").fill("Tiers")
    first = page.locator("fieldset.step").first
    first.get_by_label("Project").select_option(label="Transform PG (postgresql)")
    first.get_by_label("SQL query of step 1").fill("SELECT id, email, orders FROM users")
    # When they write a transformation after the steps and preview it
    section = page.locator("section.transform")
    expect(section.locator("h2")).to_have_text("Transformation (optional)")
    section.get_by_label("Transformation SQL").fill(TRANSFORM)
    section.get_by_role("button", name="Preview Transformation").click()
    result = section.locator(".transform-result")
    # Then the transformed columns and rows show, not the step's
    expect(result.locator("h4")).to_have_text("Transformation (the rows to write)", timeout=30_000)
    expect(result.locator(".row-count")).to_have_text("3 rows")
    expect(result.locator("thead th")).to_have_text([re.compile(r"^user_id"), re.compile(r"^email"), re.compile(r"^tier")])
    cells = [[c.strip() for c in row.locator("td").all_inner_texts()] for row in result.locator("tbody tr").all()]
    assert [(int(c[0]), c[1], c[2]) for c in cells] == [(1, "ann@x.org", "gold"), (3, "zoë@ünï.org", "std"),
                                                        (4, "NULL", "gold")]
    # And the flow draws the transform between the step and the destination
    page.get_by_label("Destination project").select_option(label="Transform PG (postgresql)")
    page.get_by_label("Destination table").fill("tiers")
    flow = page.locator(".flow")
    expect(flow.locator(".flow-transform")).to_contain_text("reads @result1")
    expect(flow.locator(".flow-node")).to_have_count(3)
    expect(flow.locator(".flow-text")).to_contain_text("The transformation reads @result1")
    web.shot_of(page.locator("section", has=flow), "transform-flow")
    # And a transformation that does not bind says so, naming the transform
    section.get_by_label("Transformation SQL").fill("SELECT nope FROM @result1")
    section.get_by_role("button", name="Preview Transformation").click()
    expect(section.locator(".transform-result .alert-error")).to_contain_text("the transform: Binder Error", timeout=30_000)
    section.get_by_label("Transformation SQL").fill(TRANSFORM)
    # When they save and run it
    page.locator("#save-job").click()
    page.locator("main h1", has_text="Jobs").wait_for()
    job = next(j for j in web_api.get("/api/jobs").json() if j["name"] == "Tiers")
    assert job["transform"] == TRANSFORM
    execution_id = web_api.post(f"/api/jobs/{job['id']}/execute").json()["execution_id"]
    deadline = time.monotonic() + 120
    while (execution := web_api.get(f"/api/executions/{execution_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, execution
        time.sleep(0.25)
    # Then the destination holds the transformed rows, and the editor shows the saved transformation
    assert execution["status"] == "completed", execution
    engine = sa.create_engine(source)
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.exec_driver_sql("SELECT user_id, email, tier FROM tiers ORDER BY 1")] == EXPECTED
    engine.dispose()
    page = web.open(f"#/jobs/{job['id']}")
    expect(page.locator("section.transform").get_by_label("Transformation SQL")).to_have_value(TRANSFORM)
