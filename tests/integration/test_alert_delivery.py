"""Alerts from recorded history to a local HTTP receiver and a local SMTP server.

Given the API on real PostgreSQL metadata (its delivery loop driven by the test, one pass
at a time), when executions finish (their final events applied by the API's recorder, as
the workers' events are), then each alert reaches its channels once, signed, with the
right content, retried after failures, and each attempt is visible in the API.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.alerts.delivery import claim, deliver
from shared.alerts.models import ChannelRow, NotificationRow
from shared.alerts.senders import send
from shared.alerts.settings import AlertSettings
from shared.alerts.signing import SIGNATURE_HEADER, verify
from shared.bootstrap import build_secret_box, build_store, build_transport
from shared.messages import Event
from shared.store.models import ExecutionRow, utcnow
from tests.fixtures.alert_receivers import Receiver, SmtpSink, self_signed_cert
from tests.unit.api_fixtures import AUTH, make_settings, sqlite_project

pytestmark = pytest.mark.integration
SECRET = "a-signing-secret-of-some-length"


class World:
    """The API plus the receivers, and what a user does with them."""

    def __init__(self, client: TestClient, http: Receiver, smtp: SmtpSink, tmp_path: Path) -> None:
        self.api, self.http, self.smtp, self.tmp = client, http, smtp, tmp_path
        self.app = client.app
        self.project = sqlite_project(client, "p", tmp_path / "p.sqlite")

    def channel(self, kind: str, name: str | None = None, **settings: Any) -> int:
        body: dict[str, Any] = {"name": name or kind, "kind": kind, "settings": settings}
        if kind == "webhook":
            body["secret"] = SECRET
            settings.setdefault("url", f"{self.http.url}/hook")
        elif kind == "slack":
            body["secret"] = f"{self.http.url}/slack"
        elif kind == "email":
            body["settings"] = {"host": "127.0.0.1", "port": self.smtp.port, "sender": "dm@example.com",
                                "to": ["oncall@example.com"], **settings}
        r = self.api.post("/api/channels", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def job(self, alerts: dict | None, name: str = "Nightly orders", max_retries: int = 0) -> int:
        r = self.api.post("/api/jobs", json={
            "name": name, "max_retries": max_retries, "alerts": alerts,
            "steps": [{"name": "s", "project_id": self.project, "sql": "SELECT 1 AS x"}],
            "destination": {"project_id": self.project, "table": "t"}})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def run(self, job_id: int, status: str, *, seconds: float = 2.0, start: float = 1_000.0,
            error: str | None = None, counts: dict | None = None, repeat_final: int = 1,
            transient: bool = False) -> int:
        """An execution that ran ``seconds`` and ended with ``status``, as the workers report it."""
        r = self.api.post(f"/api/jobs/{job_id}/execute")
        assert r.status_code == 202, r.text
        eid = r.json()["execution_id"]
        self.apply_final(eid, job_id, status, seconds=seconds, start=start, error=error, counts=counts,
                         repeat_final=repeat_final, transient=transient)
        return eid

    def apply_final(self, eid: int, job_id: int, status: str, *, seconds: float = 2.0, start: float = 1_000.0,
                    error: str | None = None, counts: dict | None = None, repeat_final: int = 1,
                    transient: bool = False) -> None:
        recorder = self.app.state.recorder
        recorder.apply(Event(execution_id=eid, job_id=job_id, kind="started", service="extractor", ts=start))
        final = Event(execution_id=eid, job_id=job_id, kind="finished", service="loader", status=status, ts=start + seconds,
                      counts=counts or {"rows_read": 5, "rows_inserted": 5 if status == "completed" else 0},
                      error={"message": error, "kind": "sql", "transient": transient} if error else {})
        for _ in range(repeat_final):  # the broker may deliver an event again
            recorder.apply(final)

    def deliver_all(self) -> int:
        return self.app.state.deliverer.run_once()

    def notifications(self, eid: int) -> list[dict]:
        r = self.api.get(f"/api/executions/{eid}/notifications")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def world(tmp_path: Path, pg_url: str) -> Iterator[World]:
    settings = make_settings(tmp_path, database_url=pg_url, retry_base_s=0, retry_max_s=0)
    transport, topology = build_transport(settings, name="test")
    alerts = AlertSettings(alert_delivery=False, alert_retry_base_s=0, alert_timeout_s=5,
                           public_url="http://dm.example")
    app = create_app(settings, transport, store=build_store(settings), box=build_secret_box(settings),
                     topology=topology, alerts=alerts)
    http, smtp = Receiver().start(), SmtpSink().start()
    try:
        with TestClient(app, headers=AUTH) as client:
            yield World(client, http, smtp, tmp_path)
    finally:
        http.stop()
        smtp.stop()
        transport.close()


def test_a_failed_execution_notifies_each_channel_once_signed_with_its_content(world: World) -> None:
    # Given a job alerting a webhook, a Slack webhook and an e-mail address
    hook, slack, mail = world.channel("webhook"), world.channel("slack"), world.channel("email")
    job = world.job({"channels": [hook, slack, mail], "on": ["failed"]})
    # When it fails (and the broker repeats its final event)
    eid = world.run(job, "failed", error="division by zero", repeat_final=2)
    assert world.deliver_all() == 3
    assert world.deliver_all() == 0
    # Then the webhook got one signed body saying what happened
    [got] = world.http.on("/hook")
    assert verify(SECRET, got.body, got.headers[SIGNATURE_HEADER])
    body = got.json()
    assert (body["event"], body["status"], body["job"]["name"], body["execution"]["id"]) == (
        "failed", "failed", "Nightly orders", eid)
    assert body["error"] == {"message": "division by zero", "kind": "sql"}
    assert body["counts"]["rows_read"] == 5 and body["link"] == f"http://dm.example/#/executions/{eid}"
    assert got.headers["Idempotency-Key"] == body["idempotency_key"]
    # and Slack one message, the mailbox one e-mail, in words
    [message] = world.http.on("/slack")
    assert "Nightly orders" in message.json()["text"] and "division by zero" in message.json()["text"]
    [email] = world.smtp.messages
    assert email["Subject"] == "[datamig] Nightly orders: failed" and "division by zero" in email.get_content()
    # and the history lists one sent attempt per channel
    seen = world.notifications(eid)
    assert sorted((n["channel_id"], n["event"], n["attempt"], n["status"]) for n in seen) == sorted(
        (c, "failed", 1, "sent") for c in (hook, slack, mail))
    assert {n["response_code"] for n in seen} == {200, 250}
    assert all(SECRET not in str(n) for n in seen)


def test_partial_success_recovery_and_slow_runs_each_notify_once(world: World) -> None:
    hook = world.channel("webhook")
    job = world.job({"channels": [hook], "on": ["partial_success", "recovered", "slow", "failed"],
                     "slow_factor": 3})
    for i in range(3):  # the usual duration: 2 s
        world.run(job, "completed", seconds=2, start=1000 + 10 * i)
    partial = world.run(job, "partial_success", seconds=2, counts={"rows_read": 5, "rows_inserted": 4,
                                                                   "rows_failed": 1})
    failed = world.run(job, "failed", error="connection refused")
    recovered = world.run(job, "completed", seconds=2)
    steady = world.run(job, "completed", seconds=2)
    slow = world.run(job, "completed", seconds=7)  # > 3 × the median of 2 s
    while world.deliver_all():
        pass
    events = {(r.json()["execution"]["id"], r.json()["event"]) for r in world.http.on("/hook")}
    assert sorted(events) == sorted({(partial, "partial_success"), (failed, "failed"),
                                     (recovered, "recovered"), (slow, "slow")})
    assert len(world.http.on("/hook")) == 4
    slow_body = next(r.json() for r in world.http.on("/hook") if r.json()["event"] == "slow")
    assert slow_body["usual_duration_seconds"] == 2.0 and slow_body["execution"]["duration_seconds"] == 7.0
    assert world.notifications(steady) == []


def test_a_receiver_answering_500_twice_gets_the_notification_on_the_third_attempt(world: World) -> None:
    hook = world.channel("webhook")
    world.http.fail("/hook", times=2, code=500)
    eid = world.run(world.job({"channels": [hook]}), "timed_out", error="execution exceeded its timeout")
    for _ in range(3):
        assert world.deliver_all() == 1  # backoff 0 in this test: due again at once
    assert world.deliver_all() == 0
    attempts = world.notifications(eid)
    assert [(a["attempt"], a["status"], a["response_code"]) for a in attempts] == [
        (1, "error", 500), (2, "error", 500), (3, "sent", 200)]
    assert "receiver says no" in attempts[0]["response"]
    keys = {r.json()["idempotency_key"] for r in world.http.on("/hook")}
    assert len(world.http.on("/hook")) == 3 and len(keys) == 1  # the same notification, three times


def test_a_receiver_that_is_down_is_retried_later_and_then_given_up(world: World) -> None:
    hook = world.channel("webhook", url="http://127.0.0.1:9/down")  # discard port: nothing listens
    world.app.state.runtime.alerts.alert_max_attempts = 2
    eid = world.run(world.job({"channels": [hook]}), "failed", error="boom")
    assert world.api.get(f"/api/executions/{eid}").json()["status"] == "failed"  # recorded before any delivery
    world.deliver_all()
    world.deliver_all()
    attempts = world.notifications(eid)
    assert [(a["attempt"], a["status"], a["response_code"]) for a in attempts] == [(1, "error", None),
                                                                                   (2, "error", None)]
    assert "ConnectError" in attempts[0]["response"]


def test_a_deliverer_that_dies_mid_send_leaves_it_to_the_next_which_sends_the_same_key(world: World) -> None:
    hook = world.channel("webhook")
    eid = world.run(world.job({"channels": [hook]}), "failed", error="boom")
    sessions, box = world.app.state.runtime.sessions, world.app.state.runtime.box
    short = AlertSettings(alert_timeout_s=5, alert_retry_base_s=0)
    # Given a deliverer that claimed the notification (a lease ago), sent it, and died before recording the answer
    with sessions() as s:
        note_id = s.scalars(sa.select(NotificationRow.id).where(NotificationRow.execution_id == eid)).one()
        assert claim(s, note_id, now=utcnow() - timedelta(seconds=short.lease_s() + 1), lease_s=short.lease_s())
        note, channel = s.get(NotificationRow, note_id), s.get(ChannelRow, hook)
        send("webhook", channel.settings, box.decrypt(channel.secret_enc), note.payload, timeout_s=5)
    # When its lease has run out, the next deliverer takes it over
    assert deliver(sessions, note_id, box=box, settings=short)
    assert not deliver(sessions, note_id, box=box, settings=short)  # sent: nothing more to do
    # Then the receiver saw the same notification twice, recognisable by its key, and the history says why
    keys = [r.json()["idempotency_key"] for r in world.http.on("/hook")]
    assert len(keys) == 2 and len(set(keys)) == 1
    assert [(a["attempt"], a["status"]) for a in world.notifications(eid)] == [(1, "interrupted"), (2, "sent")]


def test_disable_after_failures_disables_the_job_and_the_alert_says_so(world: World) -> None:
    hook = world.channel("webhook")
    job = world.job({"channels": [hook], "on": ["recovered"], "disable_after_failures": 2})
    assert world.api.patch(f"/api/jobs/{job}", json={"enabled": True}).json()["enabled"] is True
    first = world.run(job, "failed", error="boom")
    second = world.run(job, "failed", error="boom again")
    while world.deliver_all():
        pass
    [got] = world.http.on("/hook")
    body = got.json()
    assert body["execution"]["id"] == second and body["job_disabled"] is True and "DISABLED" in body["text"]
    assert world.api.get(f"/api/jobs/{job}").json()["enabled"] is False
    entries = world.api.get("/api/audit", params={"job_id": job}).json()["items"]
    assert any(e["action"] == "job.disable" and e["actor"] == "alerts" for e in entries), entries
    assert world.notifications(first) == []


def test_retried_attempts_do_not_alert_and_the_default_rules_apply_to_jobs_without_their_own(world: World) -> None:
    # Given default rules for all jobs, and a job without its own that retries transient failures once
    hook = world.channel("webhook")
    r = world.api.put("/api/alerts/defaults", json={"channels": [hook], "on": ["failed"]})
    assert r.status_code == 200, r.text
    job = world.job(None, max_retries=1)
    # When its first attempt fails transiently (a retry is queued) and the retry fails too
    first = world.run(job, "failed", error="connection reset", transient=True)
    with world.app.state.runtime.sessions() as s:
        retry = s.scalars(sa.select(ExecutionRow.id).where(ExecutionRow.retry_of == first)).one()
    world.apply_final(retry, job, "failed", error="connection reset", transient=True)
    while world.deliver_all():
        pass
    # Then one alert, for the run's last attempt
    assert [r.json()["execution"]["id"] for r in world.http.on("/hook")] == [retry]
    assert world.notifications(first) == []


def test_send_test_notification_reports_the_receivers_answer(world: World) -> None:
    hook = world.channel("webhook")
    r = world.api.post(f"/api/channels/{hook}/test")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["response_code"]) == ("sent", 200)
    [got] = world.http.on("/hook")
    assert got.json()["event"] == "test" and verify(SECRET, got.body, got.headers[SIGNATURE_HEADER])
    world.http.fail("/hook", times=1, code=503)
    r = world.api.post(f"/api/channels/{hook}/test")
    assert (r.json()["status"], r.json()["response_code"]) == ("error", 503)


def test_channel_secrets_are_write_only_and_bad_channels_are_refused_naming_the_field(world: World) -> None:
    hook = world.channel("webhook")
    listed = world.api.get("/api/channels").json()
    assert listed[0]["has_secret"] is True and SECRET not in str(listed)
    r = world.api.put(f"/api/channels/{hook}", json={"name": "renamed", "kind": "webhook",
                                                    "settings": {"url": f"{world.http.url}/hook"}})
    assert r.status_code == 200 and r.json()["has_secret"] is True  # an omitted secret is kept
    world.api.post(f"/api/channels/{hook}/test")
    assert verify(SECRET, world.http.on("/hook")[0].body, world.http.on("/hook")[0].headers[SIGNATURE_HEADER])
    r = world.api.post("/api/channels", json={"name": "x", "kind": "webhook", "settings": {"url": "nope"},
                                              "secret": SECRET})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "settings.url"
    r = world.api.post("/api/jobs", json={"name": "j", "alerts": {"channels": [999]},
                                          "steps": [{"name": "s", "project_id": world.project, "sql": "SELECT 1"}],
                                          "destination": {"project_id": world.project, "table": "t"}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "alerts.channels"
    world.job({"channels": [hook]})
    assert world.api.delete(f"/api/channels/{hook}").status_code == 409
    r = world.api.put(f"/api/channels/{hook}", json={"name": "now mail", "kind": "email", "settings": {
        "host": "127.0.0.1", "sender": "dm@example.com", "to": ["a@example.com"]}})
    assert r.status_code == 200 and r.json()["has_secret"] is False  # the webhook's key is not a password


def test_email_over_starttls_with_a_login_uses_the_stored_password(world: World, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an SMTP server that requires STARTTLS (its certificate trusted here) and a login
    cert = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert[0])
    secure = SmtpSink(tls_cert=cert, login=("dm", "smtp-password-1")).start()
    try:
        def channel(name: str, starttls: bool) -> int:
            r = world.api.post("/api/channels", json={"name": name, "kind": "email", "secret": "smtp-password-1",
                                                      "settings": {"host": "127.0.0.1", "port": secure.port,
                                                                   "starttls": starttls, "username": "dm",
                                                                   "sender": "dm@example.com",
                                                                   "to": ["oncall@example.com"]}})
            assert r.status_code == 201, r.text
            return r.json()["id"]

        tls, plain = channel("tls mail", True), channel("plain mail", False)
        # When a failure alerts both channels
        eid = world.run(world.job({"channels": [tls, plain], "on": ["failed"]}), "failed", error="boom")
        world.deliver_all()
        # Then the STARTTLS one is delivered; without STARTTLS the server offers no login (no password in clear)
        [email] = secure.messages
        assert "boom" in email.get_content()
        outcome = {a["channel_id"]: a for a in world.notifications(eid)}
        assert outcome[tls]["status"] == "sent"
        assert outcome[plain]["status"] == "error" and "AUTH extension not supported" in outcome[plain]["response"]
        assert outcome[plain]["next_attempt_at"] is None  # given up at once: retrying cannot help
        assert "smtp-password-1" not in str(outcome)
    finally:
        secure.stop()
