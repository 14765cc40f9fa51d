"""POST /api/jobs/{id}/compare: the job's final result against its destination table. Writes nothing.

Both sides are read in read-only sessions (the databases enforce it), so a ``viewer``
token may call it even though it is a POST. See :mod:`shared.compare`.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import IdPath, RuntimeDep, SessionDep
from services.api.routers.checks import DraftJob, _projects, engines_for
from services.api.routers.jobs import get_job
from shared.compare import DEFAULT_LIMIT, MAX_LIMIT, compare_job
from shared.store.jobs import job_spec

router = APIRouter(prefix="/api/jobs", tags=["checks"])


def read_only_route(request: Request) -> None:
    """Mark the request as a read (viewer allowed); runs before the token check."""
    request.state.read_only = True


class CompareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(DEFAULT_LIMIT, ge=0, le=MAX_LIMIT,
                       description="at most this many differing rows in samples (the counts are always complete)")


class Sample(BaseModel):
    key: dict[str, Any]
    columns: list[str] = Field(description="columns whose values differ (empty for a row on one side only)")
    source: dict[str, Any] | None
    destination: dict[str, Any] | None


class CompareOut(BaseModel):
    equal: bool
    method: str = Field(description="checksum (per key, bisected) or count+checksum (no key)")
    source_rows: int
    destination_rows: int
    only_in_source: int | None
    only_in_destination: int | None
    different: int | None
    samples: list[Sample]
    seconds: float
    key: list[str]
    columns: list[str] = Field(description="destination columns compared")
    note: str | None = None


@router.post("/{job_id}/compare", response_model=CompareOut)
def compare_saved(job_id: IdPath, session: SessionDep, rt: RuntimeDep,
                  body: Annotated[CompareIn | None, Body()] = None) -> dict:
    """Compare the job's final result with its destination on the key: rows only in the source,
    only in the destination, and rows that differ (up to ``limit``, with both sides' values).
    Read-only on every database; checksums are computed by the databases."""
    spec = job_spec(get_job(session, job_id))
    draft = DraftJob(steps=spec.steps, destination=spec.destination)
    with engines_for(_projects(session, draft), rt.box) as engines:
        return compare_job(spec.steps, spec.destination, engines, limit=(body or CompareIn()).limit,
                           timeout_s=spec.timeout_minutes * 60.0)
