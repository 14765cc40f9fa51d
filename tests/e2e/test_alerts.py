"""Alerts through the running stack: API, scheduler, extractor, loader as OS processes on
RabbitMQ with PostgreSQL metadata, a local HTTP receiver and a local SMTP server.

Each test runs real executions (PostgreSQL source and destination) and checks what the
receivers got and what the history (GET /api/executions/{id}/notifications) says.
"""
from __future__ import annotations

import signal

import pytest

from shared.alerts.signing import SIGNATURE_HEADER, verify
from tests.conftest import PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, running_stack
from tests.fixtures.alert_receivers import Receiver, SmtpSink, free_port, wait_until

pytestmark = pytest.mark.e2e
SECRET = "e2e-signing-secret-0123456789"
ALERT_ENV = {"DM_ALERT_POLL_S": "0.2", "DM_ALERT_RETRY_BASE_S": "0.3", "DM_ALERT_RETRY_MAX_S": "1",
             "DM_ALERT_TIMEOUT_S": "2", "DM_PUBLIC_URL": "http://dm.example"}


class Env:
    def __init__(self, client: Client, http: Receiver, smtp: SmtpSink, source: str, projects: dict) -> None:
        self.client, self.http, self.smtp, self.source, self.projects = client, http, smtp, source, projects
        self.api = client.http

    def webhook(self, path: str, url: str | None = None) -> int:
        r = self.api.post("/api/channels", json={"name": unique_name("hook"), "kind": "webhook",
                                                 "settings": {"url": url or f"{self.http.url}{path}"},
                                                 "secret": SECRET})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def job(self, sql: str, alerts: dict, *, table: str = "out", mode: str = "insert_only") -> int:
        return self.client.create_job({
            "name": unique_name("alerted"), "max_retries": 0, "alerts": alerts,
            "steps": [{"name": "read", "project_id": self.projects["src"], "sql": sql}],
            "destination": {"project_id": self.projects["dst"], "table": table, "mode": mode}})

    def notifications(self, eid: int) -> list[dict]:
        r = self.api.get(f"/api/executions/{eid}/notifications")
        assert r.status_code == 200, r.text
        return r.json()

    def settled(self, eid: int, count: int, timeout_s: float = 60) -> list[dict]:
        """The execution's notifications once ``count`` of them were sent."""
        return wait_until(lambda: (n := self.notifications(eid)) and sum(a["status"] == "sent" for a in n) >= count
                          and n, timeout_s, f"{count} sent notification(s) of execution {eid}")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    dbs = Databases()
    tmp = tmp_path_factory.mktemp("alerts")
    http, smtp = Receiver().start(), SmtpSink().start()
    try:
        src, dst = dbs.pg(), dbs.pg()
        with connect(dst) as conn:
            conn.exec_driver_sql("CREATE TABLE out (id int PRIMARY KEY, name text NOT NULL)")
        with running_stack(tmp / "stack", dbs.pg(), unique_name("dmalert"), **ALERT_ENV) as stack:
            client = Client(stack)
            projects = {"src": client.project("source", src), "dst": client.project("destination", dst)}
            yield Env(client, http, smtp, src, projects)
            client.close()
    finally:
        http.stop()
        smtp.stop()
        dbs.drop_all()


def test_a_failed_execution_sends_one_signed_webhook_one_slack_message_and_one_email(env: Env) -> None:
    # Given a job alerting a webhook, a Slack-compatible webhook and an e-mail address on failure
    hook = env.webhook("/failed")
    slack = env.api.post("/api/channels", json={"name": unique_name("slack"), "kind": "slack", "settings": {},
                                                "secret": f"{env.http.url}/slack-failed"}).json()["id"]
    mail = env.api.post("/api/channels", json={"name": unique_name("mail"), "kind": "email", "settings": {
        "host": "127.0.0.1", "port": env.smtp.port, "sender": "dm@example.com", "to": ["oncall@example.com"]}})
    assert mail.status_code == 201, mail.text
    job = env.job("SELECT 1/0 AS id, 'x' AS name", {"channels": [hook, slack, mail.json()["id"]], "on": ["failed"]})
    # When it runs and fails
    execution = env.client.run(job)
    assert execution["status"] == "failed" and "division by zero" in execution["error"]["message"]
    # Then each channel got exactly one notification, and the history says they were sent
    sent = env.settled(execution["id"], 3)
    assert sorted((a["event"], a["attempt"], a["status"]) for a in sent) == [("failed", 1, "sent")] * 3
    [got] = env.http.on("/failed")
    assert verify(SECRET, got.body, got.headers[SIGNATURE_HEADER])
    body = got.json()
    assert (body["event"], body["status"], body["execution"]["id"], body["job"]["id"]) == (
        "failed", "failed", execution["id"], job)
    assert "division by zero" in body["error"]["message"]
    assert body["link"] == f"http://dm.example/#/executions/{execution['id']}"
    [message] = env.http.on("/slack-failed")
    assert "division by zero" in message.json()["text"]
    name = env.api.get(f"/api/jobs/{job}").json()["name"]
    [email] = [m for m in env.smtp.messages if m["Subject"] == f"[datamig] {name}: failed"]
    assert "division by zero" in email.get_content() and email["To"] == "oncall@example.com"


def test_a_partial_success_sends_one_notification_with_its_counts(env: Env) -> None:
    # Given ten rows, two of which have no name for a NOT NULL column
    hook = env.webhook("/partial")
    job = env.job("SELECT i AS id, CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' || i END AS name "
                  "FROM generate_series(101, 110) i", {"channels": [hook], "on": ["partial_success", "failed"]})
    # When they are migrated
    execution = env.client.run(job)
    assert (execution["status"], execution["rows_inserted"], execution["rows_failed"]) == ("partial_success", 8, 2)
    # Then one notification says so, with the counts
    env.settled(execution["id"], 1)
    [got] = env.http.on("/partial")
    body = got.json()
    assert (body["event"], body["counts"]["rows_inserted"], body["counts"]["rows_failed"]) == ("partial_success", 8, 2)
    assert verify(SECRET, got.body, got.headers[SIGNATURE_HEADER])


def test_the_first_success_after_a_failure_sends_one_recovered_notification(env: Env) -> None:
    # Given a job whose source table does not exist yet: it fails
    hook = env.webhook("/recovered")
    table = unique_name("later")
    job = env.job(f"SELECT id, name FROM {table}", {"channels": [hook], "on": ["recovered"]},
                  table="out", mode="upsert")
    assert env.client.run(job)["status"] == "failed"
    # When the table appears, and the job runs twice more
    with connect(env.source) as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} AS SELECT 201 AS id, 'back' AS name")
    recovered, again = env.client.run(job), env.client.run(job)
    assert (recovered["status"], again["status"]) == ("completed", "completed")
    # Then only the first success after the failure notified (once)
    env.settled(recovered["id"], 1)
    env.settled(env.client.run(env.job("SELECT 1/0 AS id, 'x' AS name", {"channels": [hook], "on": ["failed"]}))[
        "id"], 1)  # a later notification to the same receiver: the delivery loop is past them all
    events = [(r.json()["event"], r.json()["execution"]["id"]) for r in env.http.on("/recovered")]
    assert events[0] == ("recovered", recovered["id"]) and len(events) == 2 and events[1][0] == "failed"
    assert env.notifications(again["id"]) == []


def test_a_run_slower_than_the_factor_times_its_median_sends_one_slow_notification(env: Env) -> None:
    # Given a job whose source waits as long as a setting says, and three quick runs
    hook = env.webhook("/slow")
    pause = unique_name("pause")
    with connect(env.source) as conn:
        conn.exec_driver_sql(f"CREATE TABLE {pause} (s float)")
        conn.exec_driver_sql(f"INSERT INTO {pause} VALUES (0)")
    job = env.job(f"SELECT 301 AS id, 'slow' AS name FROM {pause}, LATERAL (SELECT pg_sleep({pause}.s)) z",
                  {"channels": [hook], "on": ["slow"], "slow_factor": 2}, mode="truncate_load")
    quick = [env.client.run(job) for _ in range(3)]
    assert {q["status"] for q in quick} == {"completed"}
    # When a run takes more than twice the longest of them (so more than twice their median)
    wait_s = 2 * max(q["duration_seconds"] for q in quick) + 1
    with connect(env.source) as conn:
        conn.exec_driver_sql(f"UPDATE {pause} SET s = {wait_s}")
    slow = env.client.run(job)
    assert slow["status"] == "completed" and slow["duration_seconds"] > wait_s
    # Then that run, and only it, sent one slow notification
    env.settled(slow["id"], 1)
    [got] = env.http.on("/slow")
    body = got.json()
    assert (body["event"], body["execution"]["id"]) == ("slow", slow["id"])
    assert body["usual_duration_seconds"] <= max(q["duration_seconds"] for q in quick)
    assert all(env.notifications(q["id"]) == [] for q in quick)


def test_a_receiver_that_is_down_or_hangs_neither_delays_nor_fails_the_execution(env: Env) -> None:
    # Given one channel nobody listens on and one whose receiver never answers
    down = env.webhook("", url=f"http://127.0.0.1:{free_port()}/down")
    hung = env.webhook("/hung")
    env.http.hold()
    try:
        job = env.job("SELECT 401 AS id, 'fine' AS name", {"channels": [down, hung], "on": ["recovered", "slow"]},
                      mode="upsert")
        failing = env.job("SELECT 1/0 AS id, 'x' AS name", {"channels": [down, hung], "on": ["failed"]})
        # When executions run while their alerts cannot be delivered
        failed, completed = env.client.run(failing), env.client.run(job)
        # Then they end as they would without alerts, and the attempts are recorded as errors
        assert failed["status"] == "failed" and "division by zero" in failed["error"]["message"]
        assert completed["status"] == "completed" and completed["rows_written"] == 1
        attempts = wait_until(lambda: (n := env.notifications(failed["id"])) and {
            a["channel_id"] for a in n if a["status"] == "error"} == {down, hung} and n, 60, "failed attempts")
        assert all(a["status"] in ("error", "sending", "pending") for a in attempts)
        assert any("ConnectError" in (a["response"] or "") for a in attempts if a["channel_id"] == down)
        assert any("Timeout" in (a["response"] or "") for a in attempts if a["channel_id"] == hung)
    finally:
        env.http.release()
    # And once the receiver answers again, the notification arrives
    env.http.wait_for("/hung", count=2)


def test_an_api_killed_during_delivery_sends_the_notification_after_restart_with_the_same_key(env: Env) -> None:
    # Given a receiver holding the request of a failure alert when the API (the deliverer) is killed
    hook = env.webhook("/crash")
    env.http.hold()
    job = env.job("SELECT 1/0 AS id, 'x' AS name", {"channels": [hook], "on": ["failed"]})
    execution = env.client.run(job)
    env.http.wait_for("/crash", count=1)
    stack = env.client.stack
    stack.procs["api"].send_signal(signal.SIGKILL)
    stack.procs["api"].wait(30)
    env.http.release()
    # When the API starts again
    stack.start("api", "api")
    stack.wait_healthy()
    # Then the notification is sent (again, under the same idempotency key) and recorded as sent
    attempts = env.settled(execution["id"], 1)
    keys = {r.json()["idempotency_key"] for r in env.http.on("/crash")}
    assert len(keys) == 1 and len(env.http.on("/crash")) == 2
    assert [a["status"] for a in attempts] == ["interrupted", "sent"]
    # and a later alert goes through without sending this one a third time
    later = env.client.run(job)
    env.settled(later["id"], 1)
    assert [r.json()["execution"]["id"] for r in env.http.on("/crash")] == [execution["id"]] * 2 + [later["id"]]
