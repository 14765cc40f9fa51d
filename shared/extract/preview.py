"""Preview (first rows of each step) and source-side validation, both read-only and time-bounded.

Both run steps through :class:`~shared.extract.runner.Extraction`, so they plan exactly
as an execution would: read-only sessions, rolled back; temporary tables (for results
that cross projects) vanish with their sessions. ``timeout_s`` bounds the whole call:
each step gets what is left, and a watchdog cancels a statement that overruns.
"""
from __future__ import annotations

import base64
import math
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time as dtime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.errors import DatamigError
from shared.extract.planner import depends_on, step_label
from shared.extract.runner import Extraction, flavors_of, step_problems
from shared.jobspec import StepSpec
from shared.privileges import SourcePrivileges, strict_sources_default
from shared.types import Column

MAX_PREVIEW_ROWS = 1_000
PREVIEW_COUNT_CAP = 10_000
MIN_STEP_TIME_S = 0.5


def json_safe(value: Any) -> Any:
    """A value JSON can carry: Decimal/UUID as text, dates ISO 8601, bytes base64, timedelta seconds."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


class _Deadline:
    """The time left for a whole preview/validation, and a watchdog per extraction."""

    def __init__(self, timeout_s: float) -> None:
        self.end = time.monotonic() + timeout_s

    def left(self) -> float:
        return self.end - time.monotonic()

    def run(self, ext: Extraction, work: Any) -> Any:
        return run_bounded(ext, self.left(), work)


def run_bounded(target: Any, timeout_s: float, work: Any) -> Any:
    """``work()``, cancelling ``target`` (``cancel("timeout")``) when it outlasts ``timeout_s``;
    ``target`` is closed afterwards either way."""
    timer = threading.Timer(max(timeout_s, 0.0), target.cancel, args=("timeout",))
    timer.daemon = True
    timer.start()
    try:
        return work()
    finally:
        timer.cancel()
        target.close()


def _blocked(steps: list[StepSpec], engines: Mapping[int, sa.Engine]) -> dict[int, str]:
    """Step → first problem that stops it (its own or one of the steps it depends on)."""
    own: dict[int, str] = {}
    for k, message in step_problems(steps, engines):
        own.setdefault(k, message)
    flavors = flavors_of(steps, engines)
    out = {}
    for k in range(1, len(steps) + 1):
        if k in own:
            out[k] = own[k]
            continue
        bad = sorted(n for n in depends_on(steps, k, flavors) if n in own)
        if bad:
            out[k] = f"not run: it depends on {step_label(steps, bad[0])}, which has a problem: {own[bad[0]]}"
    return out


def _warnings(ext: Extraction, found: dict[int, SourcePrivileges]) -> list[str]:
    """Warnings for the risky source roles ``ext`` ran as (remembered in ``found``)."""
    for p in ext.privileges:
        found.setdefault(p.project_id, p)
    return [p.message(strict=False) for p in ext.privileges if p.risky]


def privilege_checks(found: dict[int, SourcePrivileges], *, strict: bool) -> list[dict]:
    """One check per source whose role is not read-only (failed in strict mode, a warning otherwise)."""
    return [{"check": f"source role privileges: project {pid} ({p.engine})", "ok": not strict,
             "message": p.message(strict=strict)} for pid, p in sorted(found.items()) if p.risky]


def _preview_step(steps: list[StepSpec], engines: Mapping[int, sa.Engine], k: int, limit: int,
                  deadline: _Deadline, found: dict[int, SourcePrivileges], watermark: Any = None) -> dict:
    ext = Extraction(steps[:k], engines, batch_rows=max(1, min(limit, MAX_PREVIEW_ROWS)),
                     statement_timeout_s=max(deadline.left(), MIN_STEP_TIME_S), watermark=watermark)
    out: dict[str, Any] = {"columns": [], "rows": [], "row_count": 0, "truncated": False}

    def work() -> None:
        out["columns"] = [{"name": c.name, "type": c.type} for c in ext.open()]
        for batch in ext.batches():
            room = limit - len(out["rows"])
            out["rows"] += [[json_safe(v) for v in row] for row in batch[:max(room, 0)]]
            if ext.rows_read > PREVIEW_COUNT_CAP:  # a row beyond the cap exists: the count is cut
                out["truncated"] = True
                break
        out["row_count"] = min(ext.rows_read, PREVIEW_COUNT_CAP)

    try:
        deadline.run(ext, work)
    except DatamigError as exc:
        exc.warnings = _warnings(ext, found)  # type: ignore[attr-defined]
        raise
    out["warnings"] = _warnings(ext, found)
    return out


def preview(steps: list[StepSpec], engines: Mapping[int, sa.Engine], *, limit: int = 100,
            timeout_s: float = 30, watermark: tuple[str | None, Any] | None = None) -> list[dict]:
    """Per step: columns, the first ``limit`` rows (at most 1,000, values JSON-safe, lists in
    column order), ``row_count`` (rows seen, capped at 10,000; ``truncated`` when more exist),
    ``elapsed_ms`` and ``error`` (None, or the database's message naming the step).

    ``warnings`` lists, per step, each source role it ran as that can write, reach server
    files or signal other sessions (with ``DM_STRICT_SOURCES=true`` such a step fails instead).

    ``watermark``: the ``(kind, value)`` an incremental job's ``@watermark`` is bound to.
    Writes nothing. Never raises for a step's failure; the error is in that step's entry.
    """
    limit = max(0, min(int(limit), MAX_PREVIEW_ROWS))
    deadline, blocked, results = _Deadline(timeout_s), _blocked(steps, engines), []
    found: dict[int, SourcePrivileges] = {}
    for k, step in enumerate(steps, start=1):
        entry: dict[str, Any] = {"step": k, "name": step.name, "project_id": step.project_id, "columns": [],
                                 "rows": [], "row_count": 0, "truncated": False, "elapsed_ms": 0,
                                 "error": blocked.get(k), "warnings": []}
        started = time.monotonic()
        if entry["error"] is None and deadline.left() <= 0:
            entry["error"] = f"{step_label(steps, k)}: not run: the preview time limit ({timeout_s:g} s) was reached"
        if entry["error"] is None:
            try:
                entry.update(_preview_step(steps, engines, k, limit, deadline, found, watermark))
            except DatamigError as exc:
                entry["error"], entry["warnings"] = str(exc), getattr(exc, "warnings", [])
        entry["elapsed_ms"] = round((time.monotonic() - started) * 1000)
        results.append(entry)
    return results


def _reachable(project_id: int, engine: sa.Engine, timeout_s: float) -> dict:
    check = f"source reachable: project {project_id} ({engine.dialect.name})"
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            conn.rollback()
        return {"check": check, "ok": True, "message": "connected"}
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the answer
        text = " ".join(str(getattr(exc, "orig", None) or exc).split())
        return {"check": check, "ok": False, "message": f"project {project_id} is unreachable: {text}",
                "transient": get_dialect(engine).is_transient(exc)}


def validate_sources(steps: list[StepSpec], engines: Mapping[int, sa.Engine], *,
                     timeout_s: float = 30) -> tuple[list[dict], list[Column] | None]:
    """Checks ``[{"check", "ok", "message"}]`` and the final step's columns when known (a failed
    check also says ``transient``: whether a retry may heal it).

    Every project is reached, references and statements are checked, what each source role
    may do is asked (a check per role that is not read-only: a warning, failed with
    ``DM_STRICT_SOURCES=true``), and each step
    parses and plans: it runs wrapped to return no rows, in a read-only transaction
    that is rolled back (results from other projects become empty temporary tables).
    Writes nothing; never raises for a failed check.
    """
    deadline, checks = _Deadline(timeout_s), []
    found: dict[int, SourcePrivileges] = {}
    unreachable: dict[int, bool] = {}  # project → whether its failure may heal
    for project_id in dict.fromkeys(s.project_id for s in steps):
        if project_id in engines:
            checks.append(_reachable(project_id, engines[project_id], timeout_s))
            if not checks[-1]["ok"]:
                unreachable[project_id] = checks[-1]["transient"]
    blocked = _blocked(steps, engines)
    problems = [m for _, m in step_problems(steps, engines)]
    checks.append({"check": "steps and references", "ok": not problems,
                   "message": "; ".join(problems) or "every reference names an earlier step"})
    final: list[Column] | None = None
    flavors = flavors_of(steps, engines)
    for k in range(1, len(steps) + 1):
        check = f"{step_label(steps, k)} parses and plans"
        if k in blocked:
            checks.append({"check": check, "ok": False, "message": blocked[k]})
            continue
        down = sorted(unreachable.keys() & {steps[n - 1].project_id for n in depends_on(steps, k, flavors)})
        if down:
            checks.append({"check": check, "ok": False, "message": f"not run: project {down[0]} is unreachable",
                           "transient": unreachable[down[0]]})
            continue
        ext = Extraction(steps[:k], engines, batch_rows=1, statement_timeout_s=max(deadline.left(), MIN_STEP_TIME_S),
                         probe=True)
        try:
            columns = deadline.run(ext, ext.open)
        except DatamigError as exc:
            checks.append({"check": check, "ok": False, "message": str(exc), "transient": exc.transient})
            continue
        finally:
            _warnings(ext, found)
        checks.append({"check": check, "ok": True,
                       "message": "columns: " + ", ".join(f"{c.name} {c.type}" for c in columns)})
        final = columns if k == len(steps) else final
    checks += privilege_checks(found, strict=strict_sources_default())
    return checks, final
