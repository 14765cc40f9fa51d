"""The pure rules behind exact values: intervals, decimal places, SQLite digits, allow_rounding."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.dialects.exact import decimal_of, decimal_places
from shared.dialects.postgresql_values import interval_text, parse_interval
from shared.dialects.sqlite_load import significant_digits
from shared.jobspec import JobSpec

JOB = {"name": "j", "steps": [{"name": "s", "project_id": 1, "sql": "SELECT 1"}],
       "destination": {"project_id": 2, "table": "t"}}


@pytest.mark.parametrize(("text", "value"), [
    ("1 year", "1 year"), ("1 mon", "1 mon"), ("25:00:00", "25:00:00"), ("1 day -01:00:00", "1 day -01:00:00"),
    ("1 year 2 mons 3 days 04:05:06.789", "1 year 2 mons 3 days 04:05:06.789"),
    ("3 days", timedelta(days=3)), ("-00:00:01", timedelta(seconds=-1)), ("00:00:00", timedelta(0)),
    ("-1 days -01:00:00", -timedelta(days=1, hours=1)), ("1 day 02:03:04.5", timedelta(days=1, seconds=7384.5)),
])
def test_an_interval_is_a_timedelta_only_when_it_writes_back_the_same(text: str, value: object) -> None:
    assert parse_interval(text) == value


def test_a_timedelta_is_written_as_days_and_time_of_one_sign() -> None:
    assert interval_text(-timedelta(days=1, hours=1)) == "-1 days -3600000000 microseconds"
    assert interval_text(timedelta(seconds=-1)) == "-0 days -1000000 microseconds"
    assert interval_text(timedelta(days=2, microseconds=1)) == "2 days 1 microseconds"


def test_decimal_places_and_digits_are_counted_exactly() -> None:
    assert decimal_places(Decimal("1.50")) == 1 and decimal_places(Decimal("1E-40")) == 40
    assert decimal_places(Decimal("0.1234567890123456789012345678901234567890")) == 39
    assert decimal_of(0.1) == Decimal("0.1") and decimal_of("x") is None and decimal_of(float("nan")) is None
    assert significant_digits(Decimal("1.00000000000000000000000000001")) == 30
    assert significant_digits(Decimal("9999999999999999999999999999.9999999999")) == 38
    assert significant_digits(Decimal("1.5000")) == 2


def test_allow_rounding_belongs_to_the_destination_and_may_be_given_at_the_top() -> None:
    assert JobSpec.model_validate(JOB).destination.allow_rounding is False
    top = JobSpec.model_validate({**JOB, "allow_rounding": True})
    assert top.destination.allow_rounding is True
    inside = JobSpec.model_validate({**JOB, "destination": {**JOB["destination"], "allow_rounding": True}})
    assert inside.destination.allow_rounding is True
    with pytest.raises(ValidationError, match="allow_rounding"):
        JobSpec.model_validate({**JOB, "allow_rounding": "sometimes"})
