"""The Alerts page and an execution's Notifications section, in Chromium.

Given the system in one process and a local HTTP receiver, a user adds a webhook channel
on the page, sends a test notification with the button, and reads the delivery of a
failed execution's alert on the execution page.
"""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.alerts.signing import SIGNATURE_HEADER, verify
from tests.browser.conftest import Databases, Page
from tests.fixtures.alert_receivers import Receiver, wait_until

SECRET = "browser-signing-secret-123"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    http = Receiver().start()
    yield http
    http.stop()


def test_a_user_adds_a_channel_sends_a_test_and_reads_an_executions_notifications(
        web: Page, web_api: httpx.Client, databases: Databases, receiver: Receiver) -> None:
    # Given the Alerts page
    page = web.open("#/channels")
    assert page.locator("main h1").inner_text() == "Alert channels"
    # When a user adds a webhook channel and sends a test notification
    form = page.locator("form.channel-form")
    form.get_by_label("Name").fill("Ops hook")
    form.get_by_label("Settings (JSON)").fill(f'{{"url": "{receiver.url}/page"}}')
    form.get_by_label("Secret").fill(SECRET)
    form.get_by_role("button", name="Save channel").click()
    row = page.locator('tr[data-channel="Ops hook"]')
    row.wait_for()
    assert "stored" in row.inner_text() and SECRET not in page.content()
    row.get_by_role("button", name="Send test notification").click()
    # Then the receiver gets one signed test body, and the page says it was delivered
    page.locator(".toast", has_text="Ops hook: delivered").wait_for()
    [got] = receiver.on("/page")
    assert got.json()["event"] == "test" and verify(SECRET, got.body, got.headers[SIGNATURE_HEADER])
    # And when a job alerting that channel fails, its execution page lists the delivery
    channel = next(c["id"] for c in web_api.get("/api/channels").json() if c["name"] == "Ops hook")
    url = databases.postgresql()
    project = web_api.post("/api/projects", json={"name": "alerts pg", "url": url}).json()["id"]
    job = web_api.post("/api/jobs", json={
        "name": "Alerted job", "max_retries": 0, "alerts": {"channels": [channel], "on": ["failed"]},
        "steps": [{"name": "boom", "project_id": project, "sql": "SELECT 1/0 AS x"}],
        "destination": {"project_id": project, "table": "nowhere"}})
    assert job.status_code == 201, job.text
    eid = web_api.post(f"/api/jobs/{job.json()['id']}/execute").json()["execution_id"]
    wait_until(lambda: any(n["status"] == "sent" for n in web_api.get(
        f"/api/executions/{eid}/notifications").json()), 60, "the failure alert")
    page = web.open(f"#/executions/{eid}")
    section = page.locator("section.notifications")
    section.locator("td", has_text="sent").wait_for()
    text = section.inner_text()
    assert "Ops hook" in text and "failed" in text and "200" in text
    web.shot("alerts-execution-notifications")
