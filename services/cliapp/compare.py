"""``datamig compare JOB``: the job's final result against its destination table (read-only).

Exit codes: 0 equal, 3 different, 2 bad input or an unreachable/refusing API.
"""
from __future__ import annotations

import json
from typing import Any, TextIO

from services.cliapp.client import ApiClient, CliError
from services.cliapp.output import count, table

EXIT_DIFFERENT = 3
COMPARE_TIMEOUT_S = 24 * 3600.0  # the API bounds each statement by the job's timeout_minutes


def _values(row: dict[str, Any] | None, columns: list[str]) -> str:
    if row is None:
        return "-"
    return ", ".join(f"{c}={row.get(c)!r}" for c in columns)


def compare(client: ApiClient, job: dict[str, Any], *, limit: int, as_json: bool, out: TextIO) -> int:
    """Print the comparison; returns 0 when both sides are equal, 3 when they differ."""
    if not 0 <= limit <= 10_000:
        raise CliError("--limit must be between 0 and 10000")
    report = client.request("POST", f"/api/jobs/{job['id']}/compare", json={"limit": limit},
                            timeout=COMPARE_TIMEOUT_S)
    code = 0 if report["equal"] else EXIT_DIFFERENT
    if as_json:
        print(json.dumps(report, indent=2, default=str), file=out)
        return code
    verdict = "EQUAL" if report["equal"] else "DIFFERENT"
    print(f'job "{job["name"]}": {verdict} ({report["method"]}, {report["seconds"]:.1f}s)', file=out)
    print(f"  source rows {count(report['source_rows'])}, destination rows {count(report['destination_rows'])}",
          file=out)
    if report["only_in_source"] is not None:
        print(f"  only in source {count(report['only_in_source'])}, only in destination "
              f"{count(report['only_in_destination'])}, different {count(report['different'])}", file=out)
    if report.get("note"):
        print(f"  note: {report['note']}", file=out)
    rows = []
    for s in report["samples"]:
        what = "only in source" if s["destination"] is None else "only in destination" if s["source"] is None \
            else "different"
        shown = s["columns"] or []
        rows.append((", ".join(f"{k}={v!r}" for k, v in s["key"].items()), what, ", ".join(shown),
                     _values(s["source"], shown), _values(s["destination"], shown)))
    if rows:
        print(table(("KEY", "WHAT", "COLUMNS", "SOURCE", "DESTINATION"), rows), file=out)
    return code
