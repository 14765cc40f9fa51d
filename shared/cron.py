"""Pure cron maths: validation, next run time in a job's time zone, a human description.

Schedules are 5-field cron expressions evaluated in wall-clock time of the job's IANA
time zone. Across DST changes a daily run neither skips nor doubles: a wall time that
does not exist (spring forward) runs at the same instant the clock would have shown it
before the change (02:30 becomes 03:30), and a wall time that occurs twice (fall back)
runs at its first occurrence only.
"""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from cron_descriptor import Options, get_description

DAY_NAMES = {str(i): calendar.day_name[(i - 1) % 7] for i in range(8)}
# standard cron: numbers, month/day names, '*', ranges, steps and lists; not croniter's extensions
# ('L' last day, 'W' weekday, '#' nth weekday, '?', a 6th seconds field), which other tools do not read
_STANDARD_FIELD = re.compile(r"^[0-9A-Za-z*/,-]+$")
_EXTENSION_LETTERS = re.compile(r"(?<![A-Za-z])[LW](?![A-Za-z])|[0-9][LW]|[LW][0-9]", re.I)


class CronError(ValueError):
    """The expression is not a valid 5-field cron expression; the message says why."""


def validate_cron(expr: str, *, strict: bool = True) -> None:
    """Raise :class:`CronError` unless ``expr`` is a valid 5-field cron expression that fires;
    ``strict`` also refuses syntax beyond standard cron (``strict=False`` reads schedules saved
    before that rule)."""
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    for field in fields if strict else ():
        if not _STANDARD_FIELD.match(field) or _EXTENSION_LETTERS.search(field):
            raise CronError(f"{expr!r} is not a standard cron expression: {field!r} uses syntax other tools "
                            "do not read (use numbers, names, '*', ranges 'a-b', steps '/n' and lists 'a,b')")
    try:
        it = croniter(expr, datetime(2000, 1, 1))
    except (ValueError, KeyError) as exc:
        raise CronError(f"invalid cron expression {expr!r}: {exc}") from None
    try:
        it.get_next(datetime)
    except CroniterBadDateError:
        if not strict:
            return
        raise CronError(f"{expr!r} never fires: no date has that day in that month (such as 30 February or 31 April)") from None


def next_run(schedule: str, after: datetime, tz: str = "UTC") -> datetime:
    """The first run time strictly after ``after`` (aware), returned in UTC.

    Raises CronError when the schedule never fires (:func:`validate_cron` refuses those)."""
    if after.tzinfo is None:
        after = after.replace(tzinfo=timezone.utc)
    zone = ZoneInfo(tz)
    wall = after.astimezone(zone).replace(tzinfo=None)
    it = croniter(schedule, wall)
    while True:
        try:
            candidate = it.get_next(datetime).replace(tzinfo=zone)  # fold=0: first occurrence
        except CroniterBadDateError:
            raise CronError(f"{schedule!r} never fires") from None
        instant = candidate.astimezone(timezone.utc)
        if instant > after:
            return instant


def next_runs(schedule: str, after: datetime, tz: str = "UTC", count: int = 5) -> list[datetime]:
    """The next ``count`` run times after ``after``, in UTC."""
    out: list[datetime] = []
    for _ in range(count):
        after = next_run(schedule, after, tz)
        out.append(after)
    return out


def describe_cron(expr: str) -> str:
    """A short English description: 'Daily at 02:00', 'Every 6 hours', …"""
    try:
        minute, hour, dom, month, dow = expr.split()
    except ValueError:
        return expr
    if minute.isdigit() and hour.isdigit():
        at = f"{int(hour):02d}:{int(minute):02d}"
        if dom == month == dow == "*":
            return f"Daily at {at}"
        if dom == month == "*" and dow in DAY_NAMES:
            return f"Weekly on {DAY_NAMES[dow]} at {at}"
        if dom.isdigit() and month == dow == "*":
            return f"Monthly on day {int(dom)} at {at}"
    if minute == "*" and hour == dom == month == dow == "*":
        return "Every minute"
    if minute == "0" and hour == dom == month == dow == "*":
        return "Every hour"
    try:
        return get_description(expr, Options(use_24hour_time_format=True))  # type: ignore[call-arg]
    except Exception:  # noqa: BLE001 - a description must never break a response
        return expr
