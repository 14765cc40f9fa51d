"""Response models (kept apart from the table models)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.alerts.rules import AlertRules
from shared.incremental import IncrementalSpec
from shared.jobspec import DestinationSpec, NoNulModel, StepSpec, Verify, ZeroDates


class ProjectOut(BaseModel):
    id: int
    name: str
    engine: str
    url: str | None = None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    options: dict[str, str] = Field(default_factory=dict, description="keys and values; *** for secret-bearing values")
    has_password: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PrivilegesOut(BaseModel):
    """What the connection's role can do beyond reading (asked of the database)."""

    read_only: bool = Field(description="false when the role can write, reach server files or signal sessions")
    checked: bool = Field(description="false when the engine has no roles to ask about (SQLite) or the check failed")
    role: str
    risky: list[str] = Field(default_factory=list, description="the privileges that make the role not read-only")
    strict: bool = Field(False, description="DM_STRICT_SOURCES is on: such a role is refused as a source")
    message: str | None = None


class ConnectionTestOut(BaseModel):
    ok: bool
    message: str
    elapsed_ms: float
    privileges: PrivilegesOut | None = None


class JobOut(BaseModel):
    id: int
    name: str
    description: str
    steps: list[StepSpec]
    destination: DestinationSpec
    schedule: str
    schedule_description: str
    timezone: str
    max_retries: int
    timeout_minutes: int
    enabled: bool
    validate_before_execution: bool
    zero_dates: str | None = None
    incremental: IncrementalSpec | None = None
    watermark: str | None = Field(None, description="incremental jobs: every row whose column is at most this "
                                  "is loaded (null: the next run starts from incremental.initial)")
    transform: str | None = Field(None, description="SQL over @resultN run in the pipeline; null = none")
    alerts: AlertRules | None = None
    verify: Verify = "count"
    next_run_at: datetime | None
    archived: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_status: str | None = None
    last_execution_id: int | None = None


class JobPatch(NoNulModel):
    """Partial update: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    schedule: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64)
    max_retries: int | None = Field(None, ge=0, le=10)
    timeout_minutes: int | None = Field(None, ge=1, le=1440)
    enabled: bool | None = None
    validate_before_execution: bool | None = None
    zero_dates: ZeroDates | None = None
    transform: str | None = Field(None, max_length=1_000_000, description='"" removes the transform')
    alerts: AlertRules | None = None
    verify: Verify | None = None


class ExecuteOut(BaseModel):
    execution_id: int
    status: str


class ErrorOut(BaseModel):
    message: str
    kind: str | None = None


class ExecutionOut(BaseModel):
    id: int
    job_id: int
    job_name: str | None = None
    status: str
    trigger: str
    attempt: int
    retry_of: int | None
    queued_at: datetime | None = None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    duration: str
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_skipped: int
    rows_deleted: int
    rows_failed: int
    rows_written: int
    rows_staged: int = Field(0, description="rows written inside the load transaction, committed or not "
                                              "(rolled back when the execution did not succeed)")
    rows_per_second: float | None
    error: ErrorOut | None
    report: list[dict[str, Any]] | None = None
    warnings: dict[str, int] = Field(default_factory=dict, description="counts by kind of what was done on purpose but deserves a look")
    verification: dict[str, Any] | None = Field(None, description="the destination check before COMMIT (job option "
                                                "verify): method, outcome, counts, differing keys, seconds")
    cancel_requested: bool = False
    phase: str | None = Field(None, description="what a running execution is doing: validating, extracting, clearing, "
                                                "loading, applying, verifying, committing (the last one reached once finished)")
    phase_label: str | None = None
    rows_estimate: int | None = Field(None, description="the source planner's row estimate, where the engine has one")
    estimate_source: str | None = Field(None, description="where rows_estimate comes from")
    eta_seconds: float | None = Field(None, description="seconds left at the rate so far, from rows_estimate")
    watermark_from: str | None = Field(None, description="incremental jobs: the stored watermark the run started after")
    watermark_to: str | None = Field(None, description="incremental jobs: the watermark it committed")


class ExecutionPage(BaseModel):
    items: list[ExecutionOut]
    total: int
    limit: int
    offset: int


class FailedRowOut(BaseModel):
    position: int
    values: dict[str, Any]
    error: str
    at: datetime


class ExecutionErrorsOut(BaseModel):
    execution_id: int
    status: str
    message: str | None
    kind: str | None
    stack_trace: str | None = Field(description="editors only; null for viewers (see stack_trace_note)")
    stack_trace_note: str | None = Field(None, description="why stack_trace is null although there is one")
    report: list[dict[str, Any]] | None
    failed_rows: list[FailedRowOut]
    failed_rows_total: int
    limit: int
    offset: int


class HealthOut(BaseModel):
    status: str
    metadata_store: bool
    broker: bool
    version: str
