"""Incremental jobs: the ``incremental`` option, watermark values and the boundary rule.

A job with ``incremental: {column, initial, lag, include_nulls}`` writes ``@watermark`` in its
SQL; each run binds there the stored watermark minus ``lag`` (or ``initial``, or the beginning)
and, when the destination commits, stores a new watermark ``W`` meaning "every row whose
``column`` is ≤ W has been loaded".

The boundary rule (see :mod:`shared.extract.watermark` for how the inputs are read): just
before the read's snapshot the source tells its clock ``T0`` and the start ``O`` of the oldest
transaction still open. A row the snapshot cannot see belongs to a transaction that started at
or after ``B = min(T0, O)``.

* time columns (the database sets them from the writing transaction's clock): every row with a
  value < B is visible, so ``W = B - 1 µs`` (a date: the day before B's day);
* integer columns (a sequence/auto-increment, assigned in increasing order): a run records
  ``(seen_at, V)``: the largest value it read and a server time after its snapshot. Every value
  ≤ V was assigned before seen_at, so once every open transaction started after seen_at, values
  ≤ V are complete: ``W = max V of the recorded pairs with seen_at < B``.

Rows read above W are not written by this run (the next run reads them again), so a row is
written once per ``lag`` window. ``W`` never moves back (except by ``PUT …/watermark``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

KINDS = ("int", "date", "timestamp", "timestamptz")
COLUMN_KINDS = {"smallint": "int", "int": "int", "bigint": "int", "date": "date", "timestamp": "timestamp",
                "timestamptz": "timestamptz"}
MAX_SEEN = 8  # (seen_at, value) pairs kept for integer columns
NULLS_WARNING = "watermark_nulls"
HIDDEN_WARNING = "watermark_activity_hidden"
_INTERVAL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(seconds?|s|minutes?|min|m|hours?|h|days?|d)\s*$", re.I)
_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


class IncrementalSpec(BaseModel):
    """``job.incremental``: which column of the final result carries the watermark."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(..., min_length=1, max_length=63, description="a column of the final result "
                        "(timestamp, date or integer)")
    initial: str | int | None = Field(None, description="the value the first run starts after "
                                      "(default: the beginning)")
    lag: str | int | None = Field(None, description="overlap each run re-reads: an interval for time columns "
                                  "('10 minutes', '30 s'), a number for integers")
    include_nulls: bool = Field(False, description="write rows whose column is NULL (else counted in the "
                                "execution's warnings as watermark_nulls)")

    @field_validator("initial")
    @classmethod
    def _initial(cls, v: str | int | None) -> str | int | None:
        if v is not None and guess_kind(v) is None:
            raise ValueError(f"{v!r} is not an integer, a date (YYYY-MM-DD) or a timestamp (ISO 8601)")
        return v

    @field_validator("lag")
    @classmethod
    def _lag(cls, v: str | int | None) -> str | int | None:
        if v is None or v == "" or v == 0:
            return None
        if isinstance(v, int) or (isinstance(v, str) and v.strip().isdigit()):
            if int(v) < 0:
                raise ValueError("lag must not be negative")
            return int(v)
        if not _INTERVAL_RE.match(str(v)):
            raise ValueError(f"{v!r} is not a lag: use a number (integer columns) or an interval such as "
                             "'10 minutes', '90 s', '2 hours', '1 day'")
        return v

    def lag_for(self, kind: str) -> timedelta | int:
        """The lag as the column's kind needs it. Raises ValueError when it does not fit the kind."""
        if self.lag is None:
            return 0 if kind == "int" else timedelta(0)
        if kind == "int":
            if isinstance(self.lag, int):
                return self.lag
            raise ValueError(f"incremental.lag {self.lag!r} is an interval but column {self.column!r} is an integer")
        if isinstance(self.lag, int):
            return timedelta(seconds=self.lag)
        m = _INTERVAL_RE.match(str(self.lag))
        assert m is not None
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])


def guess_kind(value: Any) -> str | None:
    """The kind a written value has: int, date, timestamp (naive) or timestamptz (with offset)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "int"
    try:
        parsed = parse_value(str(value), None)
    except ValueError:
        return None
    if isinstance(parsed, int):
        return "int"
    if isinstance(parsed, datetime):
        return "timestamptz" if parsed.tzinfo else "timestamp"
    return "date"


def parse_value(text: str | int, kind: str | None) -> int | date | datetime:
    """A stored or written value as Python (``kind`` None: whatever it looks like). Raises ValueError."""
    if isinstance(text, int) and not isinstance(text, bool):
        if kind not in (None, "int"):
            raise ValueError(f"{text!r} is an integer, the column is a {kind}")
        return text
    s = str(text).strip()
    if re.fullmatch(r"-?\d+", s):
        if kind not in (None, "int"):
            raise ValueError(f"{s!r} is an integer, the column is a {kind}")
        return int(s)
    if kind == "int":
        raise ValueError(f"{s!r} is not an integer")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s) and kind in (None, "date"):
        return date.fromisoformat(s)
    ts = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if kind == "date":
        return ts.date()
    if kind == "timestamp" and ts.tzinfo is not None:
        return ts.astimezone(timezone.utc).replace(tzinfo=None)
    if kind == "timestamptz" and ts.tzinfo is None:
        return ts.replace(tzinfo=timezone.utc)
    return ts


def format_value(value: int | date | datetime | None) -> str | None:
    """The text form stored in history, the job and the destination's ``datamig_state``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(int(value))


def column_kind(column_type: str, scale: int | None = None) -> str | None:
    """The watermark kind of a result column's portable type (None: not usable)."""
    if column_type == "decimal" and not scale:
        return "int"
    return COLUMN_KINDS.get(column_type)


def pred(bound: datetime, kind: str) -> date | datetime:
    """The largest value of ``kind`` strictly before ``bound`` (an aware UTC datetime)."""
    if kind == "date":
        return bound.date() - timedelta(days=1)
    if kind == "timestamp":
        bound = bound.astimezone(timezone.utc).replace(tzinfo=None)
    return bound - timedelta(microseconds=1)


def as_comparable(value: Any, kind: str) -> Any:
    """A read value in the form the watermark compares with (aware timestamps in UTC)."""
    if isinstance(value, Decimal):
        return int(value)
    if kind == "timestamptz" and isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    if kind == "timestamp" and isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if kind == "date" and isinstance(value, datetime):
        return value.date()
    return value


@dataclass
class Watermark:
    """What a run carries: the stored value (text), its kind, and the integer pairs."""

    value: str | None = None
    kind: str | None = None
    seen: list[list] = field(default_factory=list)  # [[seen_at iso, value], ...]

    def to_dict(self) -> dict:
        return {"value": self.value, "kind": self.kind, "seen": self.seen}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Watermark":
        data = data or {}
        return cls(value=data.get("value"), kind=data.get("kind"), seen=list(data.get("seen") or []))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | None) -> "Watermark | None":
        if not text:
            return None
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, TypeError):
            return None


def start_value(stored: str | None, spec: IncrementalSpec, kind: str) -> int | date | datetime | None:
    """The value ``@watermark`` gets: stored minus lag, else ``initial``; None = the beginning."""
    if stored is not None:
        value = parse_value(stored, kind)
        lag = spec.lag_for(kind)
        return value - lag if lag else value  # type: ignore[operator]
    if spec.initial is not None:
        return parse_value(spec.initial, kind)
    return None


def next_watermark(stored: Watermark, *, kind: str, clock: datetime, oldest: datetime | None) -> Any:
    """W for this run (see the module docstring); never below the stored value."""
    bound = min(clock, oldest) if oldest is not None else clock
    old = parse_value(stored.value, kind) if stored.value is not None else None
    if kind == "int":
        safe = [int(v) for at, v in stored.seen if datetime.fromisoformat(at) < bound]
        new: Any = max(safe) if safe else None
    else:
        new = pred(bound, kind)
    if old is None:
        return new
    return old if new is None or new < old else new


def remember_seen(stored: Watermark, *, seen_at: datetime, largest: int | None, new: Any) -> list[list]:
    """The pairs to store after a run: this run's, plus the older ones still above W."""
    pairs = [p for p in stored.seen if new is None or int(p[1]) > int(new)]
    if largest is not None and (new is None or largest > int(new)):
        pairs.append([seen_at.isoformat(), int(largest)])
    return pairs[-MAX_SEEN:]


def usage_problems(incremental: IncrementalSpec | None, sqls: list[str], mode: str) -> list[str]:
    """What is wrong with how a job uses ``@watermark`` (checked when the job is saved)."""
    from shared.extract.tokenizer import has_watermark

    using = [k for k, sql in enumerate(sqls, start=1) if has_watermark(sql)]
    if incremental is None:
        return [f"step {k} uses @watermark but the job has no incremental option "
                "(give incremental: {column, initial, lag})" for k in using]
    problems = []
    if not using:
        problems.append("incremental is set but no step's SQL uses @watermark "
                        "(write e.g. WHERE updated_at > @watermark where the stored value belongs)")
    if mode in ("truncate_load", "sync_delete"):
        problems.append(f"incremental jobs read only new rows, so mode {mode} would remove the rows loaded "
                        "before; use insert_only or upsert")
    return problems
