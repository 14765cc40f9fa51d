"""Look before you run, for the transform: problems at save time, validation and preview.

The same answers as for the steps (:mod:`shared.extract.preview`): validation binds the
transform over empty results (each step it reads runs wrapped to return no rows) and
returns its columns, which the destination is then checked against; preview runs it and
shows its first rows. Both are read-only and bounded in time.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shared.errors import DatamigError
from shared.jobspec import JobSpec, StepSpec
from shared.transform.plan import transform_problems
from shared.transform.run import Transformation
from shared.types import Column

CHECK = "the transform parses and plans"
MIN_TIME_S = 0.5
PREVIEW_COUNT_CAP = 10_000
MAX_PREVIEW_ROWS = 1_000


def transform_problems_of(spec: JobSpec) -> list[str]:
    """What is wrong with a job's transform before any database is asked (empty without one)."""
    return transform_problems(spec.transform, spec.steps) if spec.transform else []


def _bounded(t: Transformation, timeout_s: float, work: Any) -> Any:
    from shared.extract.preview import run_bounded

    return run_bounded(t, timeout_s, work)


def validate_transform(steps: list[StepSpec], transform: str, engines: Mapping[int, sa.Engine], *,
                       timeout_s: float = 30.0) -> tuple[dict, list[Column] | None]:
    """``(check, columns)``: the transform bound over the (empty) results it reads. Never raises."""
    t = Transformation(steps, transform, engines, batch_rows=1, probe=True,
                       statement_timeout_s=max(timeout_s, MIN_TIME_S))
    try:
        columns = _bounded(t, timeout_s, t.open)
    except DatamigError as exc:
        return {"check": CHECK, "ok": False, "message": str(exc), "transient": exc.transient}, None
    return {"check": CHECK, "ok": True,
            "message": "columns: " + ", ".join(f"{c.name} {c.type}" for c in columns)}, columns


def preview_transform(steps: list[StepSpec], transform: str, engines: Mapping[int, sa.Engine], *,
                      limit: int = 100, timeout_s: float = 30.0) -> dict:
    """The transform's columns, first ``limit`` rows (JSON-safe), ``row_count`` (capped at 10,000,
    ``truncated`` beyond), ``elapsed_ms`` and ``error`` (None or the message). Never raises."""
    from shared.extract.preview import json_safe

    limit = max(0, min(int(limit), MAX_PREVIEW_ROWS))
    out: dict[str, Any] = {"name": "transform", "columns": [], "rows": [], "row_count": 0, "truncated": False,
                           "elapsed_ms": 0, "error": None}
    started = time.monotonic()
    t = Transformation(steps, transform, engines, batch_rows=max(1, limit),
                       statement_timeout_s=max(timeout_s, MIN_TIME_S))

    def work() -> None:
        out["columns"] = [{"name": c.name, "type": c.type} for c in t.open()]
        count = 0
        for batch in t.batches():
            out["rows"] += [[json_safe(v) for v in row] for row in batch[: max(limit - len(out["rows"]), 0)]]
            count += len(batch)
            if count > PREVIEW_COUNT_CAP:
                out["truncated"] = True
                break
        out["row_count"] = min(count, PREVIEW_COUNT_CAP)

    try:
        _bounded(t, timeout_s, work)
    except DatamigError as exc:
        out["error"] = str(exc)
    out["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    return out
