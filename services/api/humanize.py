"""Error text in API answers, for people: see shared.errortext (projects by name, one
prefix, the database's own message). Applied where answers are built (a line each)."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.errortext import for_people
from shared.store.models import ProjectRow


def project_names(session: Session) -> dict[int, str]:
    return dict(session.execute(sa.select(ProjectRow.id, ProjectRow.name)).tuples().all())


def execution(out: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """An execution_out() answer with its error message for people."""
    error = out.get("error")
    if error:
        out["error"] = {**error, "message": for_people(error.get("message"), kind=error.get("kind"), names=names)}
    return out


def errors(out: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """An execution's error details: the message, and the report's check messages."""
    out["message"] = for_people(out.get("message"), kind=out.get("kind"), names=names)
    if isinstance(out.get("report"), list):
        out["report"] = checks(out["report"], names)
    return out


def checks(items: list[Any], names: dict[int, str]) -> list[Any]:
    """Messages for people; ``check`` stays as it is (a stable name clients match on)."""
    return [{**c, "message": for_people(c["message"], names=names)} if isinstance(c, dict) and c.get("message") else c
            for c in items]


def preview(out: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    for step in out.get("steps", []):
        if step.get("error"):
            step["error"] = for_people(step["error"], names=names)
    if out.get("destination"):
        out["destination"] = checks(out["destination"], names)
    return out


def validation(out: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    out["checks"] = checks(out.get("checks", []), names)
    return out
