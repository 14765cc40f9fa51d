"""Alert rules and the pure decision of which events an execution raises.

Vocabulary (DESIGN.md): ``job.alerts = {channels, on, slow_factor, disable_after_failures}``.

A *run* is an execution that was not retried: a failed attempt followed by a retry is not
a failure of the job yet, so it raises nothing (its retry decides). Events:

- ``failed`` / ``timed_out`` / ``partial_success``: the run ended so;
- ``recovered``: a run completed and the job's previous run (cancelled and skipped ones
  aside) failed or timed out;
- ``slow``: a run completed (or partially) and took more than ``slow_factor`` × the median
  duration of the job's last 20 successful runs (at least :data:`MIN_SLOW_HISTORY` of them).
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EventName = Literal["failed", "timed_out", "partial_success", "recovered", "slow"]
EVENTS: tuple[str, ...] = ("failed", "timed_out", "partial_success", "recovered", "slow")
DEFAULT_ON: tuple[str, ...] = ("failed", "timed_out", "recovered")
DEFAULT_SLOW_FACTOR = 3.0
SLOW_HISTORY = 20  # runs whose median makes "usual"
MIN_SLOW_HISTORY = 3  # fewer successful runs than this: no slow alert (no usual duration yet)
FAILURE_STATUSES = frozenset({"failed", "timed_out"})
SUCCESS_STATUSES = frozenset({"completed", "partial_success"})
MAX_CHANNELS = 20


class AlertRules(BaseModel):
    """When a job's executions notify, and whom (``channels`` are channel ids)."""

    model_config = ConfigDict(extra="forbid")

    channels: list[int] = Field(default_factory=list, max_length=MAX_CHANNELS,
                                description="ids of /api/channels notified")
    on: list[EventName] = Field(default_factory=lambda: list(DEFAULT_ON),
                                description="events that notify: failed, timed_out, partial_success, recovered, slow")
    slow_factor: float = Field(DEFAULT_SLOW_FACTOR, gt=1, le=1000,
                               description="slow = a run longer than this × the median of the last 20 runs")
    disable_after_failures: int | None = Field(None, ge=1, le=1000,
                                               description="disable the job after this many consecutive failed "
                                                           "runs (null = never)")

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, v: list[int]) -> list[int]:
        if any(c < 1 or c > 2**31 - 1 for c in v):
            raise ValueError("channel ids are positive integers")
        if len(set(v)) != len(v):
            raise ValueError("channels must not repeat")
        return v

    @field_validator("on")
    @classmethod
    def _unique_events(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


@dataclass(frozen=True)
class RunFacts:
    """What the decision needs to know about a finished run and the job's history."""

    status: str
    duration_s: float | None
    previous_status: str | None  # the job's previous run's status (cancelled/skipped runs aside)
    recent_durations_s: Sequence[float]  # the job's last successful runs, newest first
    consecutive_failures: int  # including this run


@dataclass(frozen=True)
class Decision:
    events: tuple[str, ...]
    disable_job: bool
    usual_duration_s: float | None = None


def usual_duration(durations: Sequence[float]) -> float | None:
    """The median of the last :data:`SLOW_HISTORY` durations, or None with too few."""
    recent = list(durations)[:SLOW_HISTORY]
    if len(recent) < MIN_SLOW_HISTORY:
        return None
    return float(statistics.median(recent))


def decide(facts: RunFacts, rules: AlertRules, *, job_enabled: bool) -> Decision:
    """The events this run raises (all of them; the caller filters by ``rules.on``) and
    whether the job must be disabled now."""
    events: list[str] = []
    if facts.status in ("failed", "timed_out", "partial_success"):
        events.append(facts.status)
    if facts.status == "completed" and facts.previous_status in FAILURE_STATUSES:
        events.append("recovered")
    usual = usual_duration(facts.recent_durations_s)
    if (facts.status in SUCCESS_STATUSES and usual is not None and facts.duration_s is not None
            and facts.duration_s > rules.slow_factor * usual):
        events.append("slow")
    disable = (job_enabled and facts.status in FAILURE_STATUSES and rules.disable_after_failures is not None
               and facts.consecutive_failures >= rules.disable_after_failures)
    return Decision(events=tuple(events), disable_job=disable, usual_duration_s=usual)


def notified_events(decision: Decision, rules: AlertRules) -> list[str]:
    """The events that notify: those in ``rules.on``, and always the failure that disabled the job."""
    chosen = [e for e in decision.events if e in rules.on]
    if decision.disable_job:
        failure = next((e for e in decision.events if e in FAILURE_STATUSES), None)
        if failure and failure not in chosen:
            chosen.insert(0, failure)
    return chosen
