"""Alert rules, signing, payloads and channel settings: pure functions, no network."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from shared.alerts.channels import ChannelSpec, check_channel
from shared.alerts.delivery import backoff_s
from shared.alerts.payload import build_payload, execution_link, idempotency_key
from shared.alerts.rules import AlertRules, RunFacts, decide, notified_events, usual_duration
from shared.alerts.senders import email_message, slack_message, webhook_request
from shared.alerts.signing import SIGNATURE_HEADER, sign, verify

ALL = AlertRules(channels=[1], on=["failed", "timed_out", "partial_success", "recovered", "slow"], slow_factor=2)


def facts(status: str, *, previous: str | None = None, duration: float | None = 10.0,
          history: tuple[float, ...] = (), failures: int = 0) -> RunFacts:
    return RunFacts(status=status, duration_s=duration, previous_status=previous, recent_durations_s=history,
                    consecutive_failures=failures)


@pytest.mark.parametrize("run, events", [
    (facts("failed", failures=1), ("failed",)),
    (facts("timed_out", failures=1), ("timed_out",)),
    (facts("partial_success"), ("partial_success",)),
    (facts("completed", previous="failed"), ("recovered",)),
    (facts("completed", previous="timed_out"), ("recovered",)),
    (facts("completed", previous="completed"), ()),
    (facts("completed", previous="partial_success"), ()),
    (facts("completed", previous=None), ()),
    (facts("partial_success", previous="failed"), ("partial_success",)),
    # slow: more than slow_factor (2) × the median of the history
    (facts("completed", duration=21, history=(10, 9, 11)), ("slow",)),
    (facts("completed", duration=20, history=(10, 9, 11)), ()),
    (facts("partial_success", duration=50, history=(10, 10, 10)), ("partial_success", "slow")),
    (facts("completed", previous="failed", duration=50, history=(10, 10, 10)), ("recovered", "slow")),
    (facts("completed", duration=1000, history=(10, 10)), ()),  # too little history: no usual duration
    (facts("failed", duration=1000, history=(10, 10, 10), failures=1), ("failed",)),  # slow is for finished runs
    (facts("cancelled"), ()),
])
def test_each_run_raises_the_events_its_outcome_and_history_say(run: RunFacts, events: tuple) -> None:
    assert decide(run, ALL, job_enabled=True).events == events


def test_the_usual_duration_is_the_median_of_the_last_twenty_runs() -> None:
    newest_first = [100.0] * 20 + [1.0] * 50  # older fast runs are ignored
    assert usual_duration(newest_first) == 100.0
    assert usual_duration([3.0, 1.0, 2.0]) == 2.0
    assert usual_duration([3.0, 1.0]) is None


def test_disable_after_failures_disables_on_the_nth_consecutive_failure_and_says_so() -> None:
    rules = AlertRules(channels=[1], on=["recovered"], disable_after_failures=3)
    assert not decide(facts("failed", failures=2), rules, job_enabled=True).disable_job
    third = decide(facts("failed", failures=3), rules, job_enabled=True)
    assert third.disable_job
    assert notified_events(third, rules) == ["failed"]  # notified although "failed" is not in on
    assert not decide(facts("failed", failures=4), rules, job_enabled=False).disable_job  # already disabled
    assert not decide(facts("failed", failures=9), AlertRules(channels=[1]), job_enabled=True).disable_job  # off


def test_only_the_events_in_on_notify() -> None:
    rules = AlertRules(channels=[1], on=["slow"], slow_factor=2)
    decision = decide(facts("partial_success", duration=50, history=(10, 10, 10)), rules, job_enabled=True)
    assert notified_events(decision, rules) == ["slow"]


@pytest.mark.parametrize("body, field", [
    ({"on": ["exploded"]}, "on"),
    ({"slow_factor": 1}, "slow_factor"),
    ({"disable_after_failures": 0}, "disable_after_failures"),
    ({"channels": [1, 1]}, "channels"),
    ({"channels": [0]}, "channels"),
    ({"surprise": True}, "surprise"),
])
def test_bad_rules_are_refused_naming_the_field(body: dict, field: str) -> None:
    with pytest.raises(ValueError) as err:
        AlertRules.model_validate(body)
    assert err.value.errors()[0]["loc"][0] == field


def test_a_signature_verifies_only_the_exact_body_with_the_right_secret() -> None:
    body = b'{"event":"failed"}'
    header = sign("s3cret-s3cret-s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("s3cret-s3cret-s3cret", body, header)
    assert not verify("s3cret-s3cret-s3creT", body, header)
    assert not verify("s3cret-s3cret-s3cret", body + b" ", header)
    assert not verify("s3cret-s3cret-s3cret", body, None)


def payload(event: str = "failed", **kw: object) -> dict:
    created = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
    key = idempotency_key(execution_id=42, queued_at=created, event=event, channel_id=7)
    execution = {"id": 42, "status": "failed", "rows_read": 10, "rows_inserted": 0, "rows_written": 0,
                 "rows_failed": 0, "duration": "2.5s", "error": {"message": "division by zero", "kind": "sql"}}
    return build_payload(key=key, event=event, job={"id": 3, "name": "Nightly orders", "enabled": True},
                         execution=execution, link=execution_link("http://dm.example/", 42), created_at=created,
                         **kw)


def test_the_webhook_body_carries_job_execution_status_counts_error_link_and_key() -> None:
    body = payload(job_disabled=True)
    assert body["job"]["name"] == "Nightly orders" and body["execution"]["id"] == 42
    assert body["status"] == "failed" and body["counts"]["rows_read"] == 10
    assert body["error"] == {"message": "division by zero", "kind": "sql"}
    assert body["link"] == "http://dm.example/#/executions/42"
    assert body["idempotency_key"] == "dm-42-1796173200000-failed-7"
    assert "DISABLED" in body["text"] and "division by zero" in body["text"]
    raw, headers = webhook_request({"url": "http://x", "headers": {"X-Team": "data", SIGNATURE_HEADER: "forged"}},
                                   "k" * 16, body)
    assert json.loads(raw) == body and verify("k" * 16, raw, headers[SIGNATURE_HEADER])
    assert headers["Idempotency-Key"] == body["idempotency_key"] and headers["X-Team"] == "data"


def test_slack_and_email_say_the_same_in_words() -> None:
    body = payload()
    assert slack_message(body)["text"] == body["text"]
    mail = email_message({"sender": "dm@example.com", "to": ["a@example.com", "b@example.com"]}, body)
    assert mail["Subject"] == "[datamig] Nightly orders: failed" and mail["To"] == "a@example.com, b@example.com"
    assert "division by zero" in mail.get_content()


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_s(n, base_s=5, max_s=30) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


@pytest.mark.parametrize("body, field", [
    ({"kind": "webhook", "settings": {"url": "ftp://x"}, "secret": "k" * 16}, "settings.url"),
    ({"kind": "webhook", "settings": {"url": "http://receiver.example"}}, "secret"),
    ({"kind": "webhook", "settings": {"url": "http://receiver.example"}, "secret": "short"}, "secret"),
    ({"kind": "slack", "settings": {}}, "secret"),
    ({"kind": "slack", "settings": {}, "secret": "not a url"}, "secret"),
    ({"kind": "email", "settings": {"host": "smtp", "sender": "dm@example.com"}}, "settings.to"),
    ({"kind": "email", "settings": {"host": "smtp", "sender": "nobody", "to": ["a@b.c"]}}, "settings.sender"),
    ({"kind": "email", "settings": {"host": "smtp", "sender": "a@b.c", "to": ["x y@b.c"]}}, "settings.to"),
])
def test_channel_settings_are_checked_per_kind_naming_the_field(body: dict, field: str) -> None:
    _, errors = check_channel(ChannelSpec(name="c", **body), has_stored_secret=False)
    assert [".".join(str(p) for p in loc[1:]) for loc, _ in errors] == [field]


def test_a_stored_secret_is_kept_when_an_update_omits_it() -> None:
    spec = ChannelSpec(name="c", kind="webhook", settings={"url": "http://receiver.example"})
    assert check_channel(spec, has_stored_secret=True)[1] == []
