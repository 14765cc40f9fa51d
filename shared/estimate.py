"""The planner's row estimate of a job's source, for the ETA of a running execution.

Only where the engine has a cheap, meaningful one: PostgreSQL's ``EXPLAIN (FORMAT JSON)``
"Plan Rows" of the last step's query, when that step reads only its own database (a step
that reads ``@resultN`` joins a table that exists only inside the extraction). Other
engines and steps give no estimate, and the page then shows no ETA. It is an estimate:
statistics can be stale (ANALYZE refreshes them), so the page says where it comes from.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)
RESULT_REF = re.compile(r"@result\d+", re.I)
TIMEOUT_MS = 5000


def planner_estimate(steps: list[Any], engines: dict[int, sa.Engine]) -> dict:
    """``{"rows": N, "source": "…"}`` or ``{}``; never raises (an estimate is optional)."""
    if not steps:
        return {}
    last = steps[-1]
    engine = engines.get(last.project_id)
    if engine is None or RESULT_REF.search(last.sql) or engine.dialect.name != "postgresql":
        return {}
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {TIMEOUT_MS}")
            plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + last.sql.strip().rstrip(";")).scalar()
            conn.rollback()
    except Exception:  # noqa: BLE001 - no estimate rather than a failed execution
        log.info("no row estimate for %s", last.name, exc_info=True)
        return {}
    rows = int(plan[0]["Plan"]["Plan Rows"]) if isinstance(plan, list) else 0
    return {"rows": rows, "source": f"PostgreSQL planner estimate (EXPLAIN) of step “{last.name}”"} if rows > 0 else {}
