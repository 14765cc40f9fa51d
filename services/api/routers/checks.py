"""/api/jobs/…/validate, /preview and /flow: look before you run. Nothing here writes.

Unsaved jobs (``POST /api/jobs/preview``, ``/api/jobs/validate``, ``/api/jobs/flow``) and
saved ones (``POST /api/jobs/{id}/…``) get the same answers, so the editor can check a
job while it is being written.
"""
from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from services.api.deps import IdPath, IdQuery, RuntimeDep, SessionDep
from services.api import humanize
from services.api.errors import FieldErrors, field_error
from services.api.routers.jobs import get_job
from services.api.routers.watermark import WatermarkOut, watermark_check, watermark_info
from shared.incremental import IncrementalSpec
from shared.store.watermarks import run_watermark
from shared.connections import build_url, create_db_engine
from shared.jobspec import DestinationSpec, Mode, StepSpec
from shared.secrets import SecretBox
from shared.store.jobs import job_spec
from shared.store.models import ProjectRow
from shared.store.projects import project_snapshot
from shared.types import Column

router = APIRouter(prefix="/api/jobs", tags=["checks"])
DEFAULT_PREVIEW_ROWS = 100
MAX_PREVIEW_ROWS = 1000
PREVIEW_TIMEOUT_S = 30.0


class StoredWatermark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str | int | None = None
    kind: Literal["int", "date", "timestamp", "timestamptz"] | None = None
    seen: list[list[Any]] = Field(default_factory=list, max_length=100)


class DraftJob(BaseModel):
    """An unsaved job: its steps and (optionally) its destination."""

    model_config = ConfigDict(extra="forbid")

    steps: list[StepSpec] = Field(..., min_length=1, max_length=20)
    destination: DestinationSpec | None = None
    incremental: IncrementalSpec | None = None
    watermark: StoredWatermark | None = Field(None, description="a stored watermark to preview from (saved jobs: theirs)")
    transform: str | None = Field(None, max_length=1_000_000, description="SQL over @resultN; null = none")

    @field_validator("transform")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v if v is not None and v.strip() else None


class Check(BaseModel):
    check: str
    ok: bool
    message: str


class ValidationOut(BaseModel):
    ok: bool
    checks: list[Check]
    watermark: WatermarkOut | None = Field(None, description="incremental jobs: the value the next run would use")
    warnings: list[str] = Field(default_factory=list, description="e.g. a source role that is not read-only")


class StepPreview(BaseModel):
    step: int
    name: str
    project_id: int
    columns: list[dict[str, Any]]
    rows: list[list[Any]]
    row_count: int = Field(description="rows the step returned, counted up to 10,000")
    truncated: bool = Field(False, description="the step has more rows than row_count (the count stopped at its cap)")
    elapsed_ms: float
    error: str | None = None
    warnings: list[str] = Field(default_factory=list, description="source roles of this step that are not read-only")


class TransformPreview(BaseModel):
    name: str = "transform"
    columns: list[dict[str, Any]]
    rows: list[list[Any]]
    row_count: int = Field(description="rows the transform returned, counted up to 10,000")
    truncated: bool = False
    elapsed_ms: float
    error: str | None = None


class PreviewOut(BaseModel):
    steps: list[StepPreview]
    watermark: WatermarkOut | None = Field(None, description="incremental jobs: the value @watermark is bound to")
    transform: TransformPreview | None = Field(None, description="the transform's rows (the rows to write)")
    destination: list[Check] | None = None
    warnings: list[str] = Field(default_factory=list, description="every step's warnings, once each")


class FlowOut(BaseModel):
    nodes: list[dict[str, Any]]
    edges: list[dict[str, int]]
    transform: dict[str, Any] | None = Field(None, description="{references: [N…]}: between the last step and "
                                             "the destination")


def _projects(session: Session, draft: DraftJob) -> dict[int, ProjectRow]:
    ids = {s.project_id for s in draft.steps} | ({draft.destination.project_id} if draft.destination else set())
    rows = {r.id: r for r in session.scalars(sa.select(ProjectRow).where(ProjectRow.id.in_(ids)))}
    errors = [field_error(["body", "steps", i, "project_id"], f"unknown project {s.project_id}")
              for i, s in enumerate(draft.steps) if s.project_id not in rows]
    if draft.destination and draft.destination.project_id not in rows:
        errors.append(field_error(["body", "destination", "project_id"],
                                  f"unknown project {draft.destination.project_id}"))
    if errors:
        raise FieldErrors(errors)
    return rows


@contextmanager
def engines_for(rows: dict[int, ProjectRow], box: SecretBox) -> Iterator[dict[int, sa.Engine]]:
    engines = {pid: create_db_engine(build_url(project_snapshot(r).connection(box)),
                                     poolclass=sa.pool.NullPool, sqlite_mode="ro") for pid, r in rows.items()}
    try:
        yield engines
    finally:
        for engine in engines.values():
            engine.dispose()


def _validate(draft: DraftJob, session: Session, box: SecretBox) -> dict:
    from shared.extract import validate_sources
    from shared.transform.checks import validate_transform
    from shared.validation import validate_job

    with engines_for(_projects(session, draft), box) as engines:
        if draft.destination is None:
            checks, _ = validate_sources(draft.steps, engines, timeout_s=PREVIEW_TIMEOUT_S)
            if draft.transform is not None:
                checks.append(validate_transform(draft.steps, draft.transform, engines, timeout_s=PREVIEW_TIMEOUT_S)[0])
        else:
            checks = validate_job(draft.steps, draft.destination, engines, timeout_s=PREVIEW_TIMEOUT_S,
                                  transform=draft.transform)
            if all(c["ok"] for c in checks) and (impact := _sync_delete_impact(draft, engines, None)):
                checks.append(impact)
        info, _ = watermark_info(draft.incremental, _stored(draft), draft.steps, engines, timeout_s=PREVIEW_TIMEOUT_S)
        checks += watermark_check(info)
    warnings = [c["message"] for c in checks if c["ok"] and c["message"].startswith("warning:")]
    return {"ok": all(c["ok"] for c in checks), "checks": checks, "warnings": warnings, "watermark": info}


def _preview(draft: DraftJob, session: Session, box: SecretBox, limit: int) -> dict:
    from shared.extract import preview
    from shared.load import check_destination
    from shared.transform.checks import preview_transform

    with engines_for(_projects(session, draft), box) as engines:
        info, binding = watermark_info(draft.incremental, _stored(draft), draft.steps, engines,
                                       timeout_s=PREVIEW_TIMEOUT_S)
        steps = preview(draft.steps, engines, limit=limit, timeout_s=PREVIEW_TIMEOUT_S, watermark=binding)
        transformed = None if draft.transform is None else preview_transform(
            draft.steps, draft.transform, engines, limit=limit, timeout_s=PREVIEW_TIMEOUT_S)
        destination = None
        last = steps[-1] if transformed is None else transformed  # what would be written
        if draft.destination is not None and last is not None and last.get("error") is None:
            columns = [Column(name=c["name"], type=c.get("type", "unknown")) for c in last["columns"]]
            try:
                destination = check_destination(engines[draft.destination.project_id],
                                                 table=draft.destination.table, columns=columns,
                                                 mode=draft.destination.mode,
                                                 key_columns=draft.destination.key_columns)
            except Exception as exc:  # noqa: BLE001 - an unreachable destination is a failed check
                destination = [{"check": "destination reachable", "ok": False,
                                "message": str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]}]
            if destination and all(c["ok"] for c in destination) and (
                    impact := _sync_delete_impact(draft, engines, columns)):
                destination.append(impact)
    warnings = list(dict.fromkeys(w for s in steps for w in s.get("warnings", [])))
    return {"steps": steps, "transform": transformed, "destination": destination, "warnings": warnings,
            "watermark": info}


def _stored(draft: DraftJob) -> dict | None:
    return draft.watermark.model_dump() if draft.watermark else None


def _sync_delete_impact(draft: DraftJob, engines: dict[int, sa.Engine], columns: list[Column] | None) -> dict | None:
    """For a sync_delete destination: how many rows the run would delete (None for other modes).

    Read-only: the job's steps run as in an execution plus one step on the final step's
    project that selects only the key columns from ``@resultK`` (pushed down as a CTE);
    :func:`shared.load.destination.sync_delete_impact` compares them with the
    destination's keys (each side capped at ``SYNC_IMPACT_CAP`` rows). An impact that
    cannot be computed is reported as such and does not fail the validation.
    """
    from shared.extract import Extraction
    from shared.load.destination import sync_delete_impact

    dest = draft.destination
    if dest is None or dest.mode != Mode.sync_delete:
        return None
    steps, last = list(draft.steps), draft.steps[-1]
    try:
        if columns is None:
            with Extraction(steps, engines, batch_rows=1, statement_timeout_s=PREVIEW_TIMEOUT_S, probe=True) as ext:
                columns = ext.open()
        final_columns = columns

        def source_keys(positions: list[int]) -> Iterator[tuple]:
            quote = engines[last.project_id].dialect.identifier_preparer.quote_identifier
            keys = ", ".join(quote(final_columns[i].name) for i in positions)
            key_step = StepSpec(name="sync_delete keys", project_id=last.project_id,
                                sql=f"SELECT {keys} FROM @result{len(steps)} dm_keys")
            with Extraction([*steps, key_step], engines, statement_timeout_s=PREVIEW_TIMEOUT_S) as ext:
                ext.open()
                for batch in ext.batches():
                    yield from batch

        return sync_delete_impact(engines[dest.project_id], table=dest.table, columns=columns,
                                  key_columns=dest.key_columns, source_keys=source_keys,
                                  allow_empty_source=dest.allow_empty_source, max_delete_ratio=dest.max_delete_ratio)
    except Exception as exc:  # noqa: BLE001 - the other checks passed; the run's own guards still apply
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return {"check": "sync_delete impact", "ok": True, "message": f"not computed: {reason}"}


def _flow(draft: DraftJob, session: Session) -> dict:
    from shared.extract import flow

    ids = {s.project_id for s in draft.steps}
    rows = session.scalars(sa.select(ProjectRow).where(ProjectRow.id.in_(ids))).all()
    return flow(draft.steps, {r.id: {"name": r.name, "engine": r.engine} for r in rows}, transform=draft.transform)


def _saved(session: Session, job_id: int) -> DraftJob:
    row = get_job(session, job_id)
    spec = job_spec(row)
    return DraftJob(steps=spec.steps, destination=spec.destination, incremental=spec.incremental,
                    watermark=run_watermark(row) if spec.incremental else None, transform=spec.transform)


@router.post("/validate", response_model=ValidationOut)
def validate_draft(draft: DraftJob, session: SessionDep, rt: RuntimeDep) -> dict:
    """Run every pre-execution check on an unsaved job."""
    return humanize.validation(_validate(draft, session, rt.box), humanize.project_names(session))


@router.post("/preview", response_model=PreviewOut)
def preview_draft(draft: DraftJob, session: SessionDep, rt: RuntimeDep,
                  limit: int = Query(DEFAULT_PREVIEW_ROWS, ge=1, le=MAX_PREVIEW_ROWS)) -> dict:
    """Each step's columns, first rows, count and time (or its error), and the destination check."""
    return humanize.preview(_preview(draft, session, rt.box, limit), humanize.project_names(session))


@router.post("/flow", response_model=FlowOut)
def flow_draft(draft: DraftJob, session: SessionDep) -> dict:
    return _flow(draft, session)


@router.post("/{job_id}/validate", response_model=ValidationOut)
def validate_saved(job_id: IdPath, session: SessionDep, rt: RuntimeDep) -> dict:
    return humanize.validation(_validate(_saved(session, job_id), session, rt.box), humanize.project_names(session))


@router.post("/{job_id}/preview", response_model=PreviewOut)
def preview_saved(job_id: IdPath, session: SessionDep, rt: RuntimeDep,
                  limit: int = Query(DEFAULT_PREVIEW_ROWS, ge=1, le=MAX_PREVIEW_ROWS)) -> dict:
    return humanize.preview(_preview(_saved(session, job_id), session, rt.box, limit), humanize.project_names(session))


@router.get("/{job_id}/flow", response_model=FlowOut)
def flow_saved(job_id: IdPath, session: SessionDep) -> dict:
    return _flow(_saved(session, job_id), session)
