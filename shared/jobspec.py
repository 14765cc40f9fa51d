"""The job, step, destination and project shapes, with their validation rules.

These pydantic models are the contract between the API, the command line and the
workers (a run request carries a :class:`JobSpec` snapshot). Field names follow
DESIGN.md; validation errors name the field and say why.
"""
from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator,
                      model_validator)

from shared.alerts.rules import AlertRules
from shared.cron import CronError, describe_cron, validate_cron
from shared.incremental import IncrementalSpec, usage_problems

IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
TABLE_NAME_RE = re.compile(rf"^{IDENTIFIER}(\.{IDENTIFIER})?$")
COLUMN_NAME_RE = re.compile(rf"^{IDENTIFIER}$")
MAX_SQL_CHARS = 1_000_000
MAX_STEPS = 20
DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT_MINUTES = 30
STORED = "stored"  # validation context of a job read back from the store: saved schedules stay readable

NonEmptyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ZeroDates = Literal["keep", "null"]
TRANSFORM_HELP = ("optional SQL (DuckDB dialect) over @result1..@resultN returning the rows to write, run in the "
                  "pipeline after the steps; null = write the last step's result")
Verify = Literal["none", "count", "checksum"]
VERIFY_HELP = ('check the destination before COMMIT (a mismatch fails and rolls back): "count" (default) compares '
               'row and key counts computed by the database; "checksum" also compares every written row\'s values '
               'by hash; "none" skips the check')
ZERO_DATES_HELP = ('MariaDB/MySQL zero and invalid dates (0000-00-00, 2021-02-30): "keep" copies them as they are '
                   'where the destination can hold them and fails the row elsewhere; "null" loads them as NULL, '
                   'counted in the execution\'s warnings (zero_dates)')


class Engine(str, Enum):
    postgresql = "postgresql"
    mysql = "mysql"
    mssql = "mssql"
    sqlite = "sqlite"


class Mode(str, Enum):
    insert_only = "insert_only"
    upsert = "upsert"
    truncate_load = "truncate_load"
    sync_delete = "sync_delete"

    @property
    def needs_key(self) -> bool:
        return self in (Mode.upsert, Mode.sync_delete)


class Status(str, Enum):
    queued = "queued"
    running = "running"
    completed = "completed"
    partial_success = "partial_success"
    failed = "failed"
    cancelled = "cancelled"
    timed_out = "timed_out"
    skipped = "skipped"

    @property
    def finished(self) -> bool:
        return self not in (Status.queued, Status.running)


FINISHED_STATUSES = frozenset(s.value for s in Status if s.finished)


def contains_nul(value: Any) -> bool:
    """Whether a text value (or a list/dict of them) holds a NUL character, which PostgreSQL
    cannot store in text (the metadata store and most destinations refuse it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_nul(v) for v in value)
    return False


class NoNulModel(BaseModel):
    """A request model whose text fields refuse NUL characters (422 naming the field)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: Any, info: ValidationInfo) -> Any:
        if contains_nul(v) and not (info.context or {}).get(STORED):
            raise ValueError("must not contain a NUL character (\\u0000)")
        return v


class _Strict(NoNulModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class StepSpec(_Strict):
    """One query step; step K may reference ``@result1`` … ``@result{K-1}``."""

    name: NonEmptyName
    description: str = Field("", max_length=2000)
    project_id: int = Field(..., ge=1, le=2**31 - 1)
    sql: str = Field(..., max_length=MAX_SQL_CHARS)

    @field_validator("sql")
    @classmethod
    def _sql_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("SQL must not be empty")
        return v


class DestinationSpec(_Strict):
    """Where the last step's result is written, and how."""

    project_id: int = Field(..., ge=1, le=2**31 - 1)
    table: str = Field(..., max_length=200)
    mode: Mode = Mode.insert_only
    key_columns: list[str] | None = Field(None, max_length=32)
    allow_empty_source: bool = Field(False, description="sync_delete: allow an empty source to delete every row")
    max_delete_ratio: float | None = Field(
        None, ge=0, le=1, description="sync_delete: stop (rolled back) if a run would delete more than this share"
    )
    zero_dates: ZeroDates | None = Field(None, description="the job's zero_dates option (set at the job's top level)")
    allow_rounding: bool = Field(
        False, description="write values rounded to a destination column's scale instead of failing their rows"
    )
    verify: Verify = Field("count", description="the job's verify option (set at the job's top level)")

    @field_validator("table")
    @classmethod
    def _table_name(cls, v: str) -> str:
        if not TABLE_NAME_RE.match(v):
            raise ValueError(
                "table must be 'table' or 'schema.table' made of letters, digits, '_' or '$', "
                "starting with a letter or '_' (at most 63 characters each)"
            )
        return v

    @field_validator("key_columns")
    @classmethod
    def _key_names(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        bad = [c for c in v if not COLUMN_NAME_RE.match(c)]
        if bad:
            raise ValueError(f"key column names must be ordinary identifiers: {bad}")
        if len({c.lower() for c in v}) != len(v):
            raise ValueError("key columns must not repeat")
        return v or None


class JobOptions(_Strict):
    schedule: str = Field("", max_length=200, description="5-field cron; empty = manual only")
    timezone: str = Field("UTC", max_length=64)
    max_retries: int = Field(DEFAULT_MAX_RETRIES, ge=0, le=10)
    timeout_minutes: int = Field(DEFAULT_TIMEOUT_MINUTES, ge=1, le=1440)
    enabled: bool = False
    validate_before_execution: bool = True
    zero_dates: ZeroDates | None = Field(None, description=ZERO_DATES_HELP + "; default: the source project's "
                                         "option zero_dates, else keep")
    alerts: AlertRules | None = Field(None, description="when to notify which channels; null = the defaults "
                                      "for all jobs (GET /api/alerts/defaults)")
    verify: Verify | None = Field(None, description=VERIFY_HELP)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str, info: ValidationInfo) -> str:
        v = " ".join(v.split())
        if v:
            try:
                validate_cron(v, strict=not (info.context or {}).get(STORED))
            except CronError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')") from None
        return v


class JobSpec(JobOptions):
    """A job definition as users write it (API body, YAML file, run snapshot)."""

    name: NonEmptyName
    description: str = Field("", max_length=5000)
    steps: list[StepSpec] = Field(..., min_length=1, max_length=MAX_STEPS)
    destination: DestinationSpec
    incremental: IncrementalSpec | None = Field(None, description="read only new rows: @watermark in the SQL "
                                                "is bound to the stored watermark (see README, Incremental jobs)")

    transform: str | None = Field(None, max_length=MAX_SQL_CHARS, description=TRANSFORM_HELP)

    @model_validator(mode="after")
    def _watermark_use(self) -> "JobSpec":
        problems = usage_problems(self.incremental, [s.sql for s in self.steps], self.destination.mode.value)
        if self.incremental is not None and self.transform is not None:
            problems.append("an incremental job cannot have a transform yet (the watermark column is read "
                            "from the last step's result)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("transform")
    @classmethod
    def _no_blank_transform(cls, v: str | None) -> str | None:
        return v if v is not None and v.strip() else None  # null, empty or blank: no transform

    @model_validator(mode="before")
    @classmethod
    def _job_level_allow_rounding(cls, data: object) -> object:
        """``allow_rounding`` may also be given at the job's top level; it belongs to the destination."""
        if isinstance(data, dict) and "allow_rounding" in data and isinstance(data.get("destination"), dict):
            data = dict(data)
            allow = data.pop("allow_rounding")
            data["destination"] = {**data["destination"], "allow_rounding": allow}
        return data

    @model_validator(mode="after")
    def _step_names_unique(self) -> "JobSpec":
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must be unique within a job")
        # stored and sent with the destination (one JSON document), shown at the top level
        if self.zero_dates is not None:
            self.destination.zero_dates = self.zero_dates
        else:
            self.zero_dates = self.destination.zero_dates
        if self.verify is not None:  # the same for verify: the loader reads it with the destination
            self.destination.verify = self.verify
        self.verify = self.destination.verify
        return self


class JobOut(JobSpec):
    model_config = ConfigDict(extra="ignore")

    id: int
    next_run_at: datetime | None = None
    schedule_description: str = ""
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_status: str | None = None

    @model_validator(mode="after")
    def _describe(self) -> "JobOut":
        if self.schedule and not self.schedule_description:
            self.schedule_description = describe_cron(self.schedule)
        return self
