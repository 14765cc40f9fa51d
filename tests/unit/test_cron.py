"""Pure cron maths: next run in a time zone (DST-safe) and human descriptions."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.cron import CronError, describe_cron, next_run, next_runs, validate_cron

UTC = timezone.utc


@pytest.mark.parametrize("expr, text", [
    ("0 2 * * *", "Daily at 02:00"),
    ("0 */6 * * *", "Every 6 hours"),
    ("0 0 * * 0", "Weekly on Sunday at 00:00"),
    ("0 0 1 * *", "Monthly on day 1 at 00:00"),
    ("0 * * * *", "Every hour"),
    ("* * * * *", "Every minute"),
    ("*/15 * * * *", "Every 15 minutes"),
])
def test_describe(expr: str, text: str) -> None:
    assert describe_cron(expr) == text


@pytest.mark.parametrize("schedule, after, tz, expected", [
    ("0 2 * * *", datetime(2026, 1, 1, 2, 0, tzinfo=UTC), "UTC", datetime(2026, 1, 2, 2, 0, tzinfo=UTC)),
    ("0 2 * * *", datetime(2026, 1, 1, 0, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 1, 1, 1, 0, tzinfo=UTC)),
    # spring forward: 02:30 does not exist in New York on 2026-03-08; runs once, at 03:30 EDT
    ("30 2 * * *", datetime(2026, 3, 8, 5, 0, tzinfo=UTC), "America/New_York", datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
    # fall back: 01:30 happens twice on 2026-11-01; runs at the first one only
    ("30 1 * * *", datetime(2026, 11, 1, 4, 0, tzinfo=UTC), "America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ("30 1 * * *", datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York", datetime(2026, 11, 2, 6, 30, tzinfo=UTC)),
])
def test_next_run(schedule: str, after: datetime, tz: str, expected: datetime) -> None:
    assert next_run(schedule, after, tz) == expected


def test_daily_runs_across_dst_are_one_per_day() -> None:
    runs = next_runs("30 2 * * *", datetime(2026, 3, 6, tzinfo=UTC), "America/New_York", count=5)
    assert [r.astimezone().date() for r in runs] == sorted({r.astimezone().date() for r in runs})
    assert len({r.date() for r in runs}) == 5


@pytest.mark.parametrize("expr, words", [("* * *", "5 fields"), ("61 * * * *", "out of range"),
                                         ("* * * * * *", "5 fields"), ("a b c d e", "invalid")])
def test_invalid_cron_says_why(expr: str, words: str) -> None:
    with pytest.raises(CronError, match=words):
        validate_cron(expr)
