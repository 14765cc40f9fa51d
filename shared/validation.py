"""Pre-execution validation: sources (shared.extract) plus the destination (shared.load).

The answer is a list of :class:`Check` ``{"check", "ok", "message"}`` (a failed check a retry
may heal also says ``"transient": true``, set from ``Dialect.is_transient``). Nothing is written:
source queries are planned inside transactions that are rolled back, and the
destination is only inspected.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NotRequired, TypedDict

import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.jobspec import DestinationSpec, StepSpec


class Check(TypedDict):
    """One validation check as reports, history and the API carry it."""

    check: str
    ok: bool
    message: str
    transient: NotRequired[bool]  # failed, and a retry may heal it (a database that is down); absent: no


def failure_may_heal(report: list[Check]) -> bool:
    """True when checks failed and a retry may heal every one of them (a wrong password, query or
    table fails for good; a database that is down can come back)."""
    failed = [c for c in report if not c["ok"]]
    return bool(failed) and all(c.get("transient", False) for c in failed)


def validate_job(steps: list[StepSpec], destination: DestinationSpec, engines: Mapping[int, sa.Engine], *,
                 timeout_s: float = 30.0, transform: str | None = None) -> list[Check]:
    """Every check of a job; a failed source check skips the destination column checks. With a
    ``transform``, the destination is checked against the transform's columns."""
    from shared.extract import validate_sources
    from shared.load import check_destination

    report, columns = validate_sources(steps, engines, timeout_s=timeout_s)
    if transform is not None:
        from shared.transform.checks import validate_transform

        check, columns = validate_transform(steps, transform, engines, timeout_s=timeout_s)
        report.append(check)
    engine = engines.get(destination.project_id)
    if engine is None:
        return [*report, {"check": "destination reachable", "ok": False,
                          "message": f"destination project {destination.project_id} is unknown"}]
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - the check reports the driver's words
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [*report, {"check": "destination reachable", "ok": False, "message": message,
                          "transient": get_dialect(engine).is_transient(exc)}]
    report.append({"check": "destination reachable", "ok": True, "message": "connected"})
    if columns is None:
        return report
    return [*report, *check_destination(engine, table=destination.table, columns=columns,
                                        mode=destination.mode, key_columns=destination.key_columns)]
