"""Subcommands that talk to the HTTP API: ``jobs apply``, ``jobs list``, ``run``, ``history``, ``compare``.

Exit codes: 0 success, 1 a run that failed, 2 bad input or an unreachable/refusing API,
3 a run that ended in partial_success (``compare``: the two sides differ).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from services.cliapp.apply import apply_spec
from services.cliapp.client import ApiClient, ApiError, CliError
from services.cliapp.output import count, rate, table, when
from services.cliapp.run import run_job
from services.cliapp.specfile import load_spec_file
from services.cliapp.watermark import add_watermark_command, run_watermark

COMMANDS = ("jobs", "run", "history", "compare", "watermark")
STATUSES = ("queued", "running", "completed", "partial_success", "failed", "cancelled", "timed_out", "skipped")
DEFAULT_HISTORY_LIMIT = 20


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register the client subcommands on the ``datamig`` parser."""
    p_jobs = sub.add_parser("jobs", help="list jobs, or apply projects and jobs from a YAML file")
    jobs_sub = p_jobs.add_subparsers(dest="jobs_command", required=True)
    p_apply = jobs_sub.add_parser("apply", help="create or update projects and jobs by name from a YAML file")
    p_apply.add_argument("-f", "--file", required=True, help="the YAML file (projects: and jobs:)")
    p_apply.add_argument("--dry-run", action="store_true", help="print the plan only")
    p_apply.add_argument("--update-passwords", action="store_true",
                         help="send the file's passwords to existing projects too (they cannot be compared)")
    p_list = jobs_sub.add_parser("list", help="a table of jobs")
    p_list.add_argument("--all", action="store_true", help="include archived jobs")
    p_list.add_argument("--json", action="store_true", help="print the API's JSON")

    p_run = sub.add_parser("run", help="execute a job now (by id or name)")
    p_run.add_argument("job", metavar="JOB", help="job id or name")
    p_run.add_argument("--wait", action="store_true", help="follow it with a progress line; exit code says how it ended")
    p_run.add_argument("--no-follow-retries", action="store_true", help="with --wait: stop at the first attempt")

    p_hist = sub.add_parser("history", help="executions, newest first")
    p_hist.add_argument("job", metavar="JOB", nargs="?", help="job id or name (default: all jobs)")
    p_hist.add_argument("--status", action="append", default=[], metavar="STATUS",
                        help=f"repeatable or comma-separated: {', '.join(STATUSES)}")
    p_hist.add_argument("--since", help="queued at or after (ISO date/time, UTC)")
    p_hist.add_argument("--until", help="queued at or before (ISO date/time, UTC)")
    p_hist.add_argument("--limit", type=int, default=DEFAULT_HISTORY_LIMIT, help="rows (default %(default)s)")
    p_hist.add_argument("--offset", type=int, default=0, help="skip this many newest rows")
    p_hist.add_argument("--json", action="store_true", help="print the API's JSON")

    p_cmp = sub.add_parser("compare", help="compare a job's result with its destination table (read-only); "
                                           "exit code 0 equal, 3 different")
    p_cmp.add_argument("job", metavar="JOB", help="job id or name")
    p_cmp.add_argument("--limit", type=int, default=100, help="differing rows to show (default %(default)s)")
    p_cmp.add_argument("--json", action="store_true", help="print the API's JSON")
    add_watermark_command(sub)


def resolve_job(client: ApiClient, ref: str, *, include_archived: bool) -> dict[str, Any]:
    """A job by id or by name (a live job wins over archived namesakes). Raises CliError."""
    if ref.isdigit():
        try:
            job = client.get(f"/api/jobs/{ref}")
            if include_archived or not job.get("archived"):
                return job
        except ApiError as exc:
            if exc.status_code != 404:
                raise
    jobs = client.get("/api/jobs", include_archived="true")
    named = [j for j in jobs if j["name"] == ref]
    live = [j for j in named if not j.get("archived")]
    candidates = live or (named if include_archived else [])
    if not candidates:
        archived = " (only an archived one)" if named else ""
        raise CliError(f'no job with id or name "{ref}"{archived}; see datamig jobs list')
    if len(candidates) > 1:
        raise CliError(f'several jobs are named "{ref}" (ids {", ".join(str(j["id"]) for j in candidates)}); use an id')
    return candidates[0]


def _schedule(job: dict[str, Any]) -> str:
    if not job.get("schedule"):
        return "manual"
    desc = job.get("schedule_description")
    return f"{job['schedule']} ({desc})" if desc else job["schedule"]


def list_jobs(client: ApiClient, *, include_archived: bool, as_json: bool, out: TextIO) -> int:
    jobs = client.get("/api/jobs", include_archived="true" if include_archived else None)
    if as_json:
        print(json.dumps(jobs, indent=2, default=str), file=out)
        return 0
    rows = [(j["id"], j["name"] + (" [archived]" if j.get("archived") else ""), j["destination"]["mode"],
             _schedule(j), "yes" if j.get("enabled") else "no", j.get("last_status") or "-") for j in jobs]
    print(table(("ID", "NAME", "MODE", "SCHEDULE", "ENABLED", "LAST STATUS"), rows) if rows else "no jobs", file=out)
    return 0


def _statuses(values: list[str]) -> list[str]:
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    bad = [s for s in out if s not in STATUSES]
    if bad:
        raise CliError(f"unknown status {bad[0]!r}; use one of {', '.join(STATUSES)}")
    return out


def _attempt(e: dict[str, Any]) -> str:
    return f"{e['attempt']} (retry of {e['retry_of']})" if e.get("retry_of") else str(e["attempt"])


def show_history(client: ApiClient, args: argparse.Namespace, *, out: TextIO) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    job_id = resolve_job(client, args.job, include_archived=True)["id"] if args.job else None
    params: dict[str, Any] = {"job_id": job_id, "status": _statuses(args.status) or None,
                              "start_date": args.since, "end_date": args.until, "limit": args.limit,
                              "offset": args.offset}
    page = client.get("/api/executions", **params)
    if args.json:
        print(json.dumps(page, indent=2, default=str), file=out)
        return 0
    rows = [(e["id"], e.get("job_name") or e["job_id"], e["status"], e["trigger"], _attempt(e),
             when(e.get("started_at") or e.get("queued_at")), e.get("duration") or "", count(e["rows_read"]),
             count(e["rows_written"]), count(e["rows_failed"]), rate(e.get("rows_per_second")),
             (e.get("error") or {}).get("message", "")) for e in page["items"]]
    if not rows:
        print("no executions", file=out)
        return 0
    print(table(("ID", "JOB", "STATUS", "TRIGGER", "ATTEMPT", "STARTED (UTC)", "DURATION", "READ", "WRITTEN",
                 "FAILED", "ROWS/S", "ERROR"), rows), file=out)
    if page["total"] > len(rows):
        print(f"({len(rows)} of {page['total']}; --limit/--offset for more)", file=out)
    return 0


def _run(args: argparse.Namespace, client: ApiClient, out: TextIO, err: TextIO) -> int:
    if args.command == "jobs" and args.jobs_command == "apply":
        spec = load_spec_file(args.file)
        apply_spec(client, spec, out=out, dry_run=args.dry_run, update_passwords=args.update_passwords)
        return 0
    if args.command == "jobs":
        return list_jobs(client, include_archived=args.all, as_json=args.json, out=out)
    if args.command == "run":
        job = resolve_job(client, args.job, include_archived=False)
        return run_job(client, job, wait=args.wait, out=out, err=err, tty=err.isatty(),
                       follow_retries=not args.no_follow_retries)
    if args.command == "compare":
        from services.cliapp.compare import compare

        job = resolve_job(client, args.job, include_archived=True)
        return compare(client, job, limit=args.limit, as_json=args.json, out=out)
    if args.command == "watermark":
        return run_watermark(client, resolve_job(client, args.job, include_archived=False), args, out=out)
    return show_history(client, args, out=out)


def dispatch(args: argparse.Namespace, *, client: ApiClient | None = None,
             out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one client subcommand; returns the exit code (errors are printed, never raised)."""
    out, err = out or sys.stdout, err or sys.stderr
    own = client is None
    client = client or ApiClient.from_env()
    try:
        return _run(args, client, out, err)
    except CliError as exc:
        print(f"datamig: {exc.message}", file=err)
        return exc.exit_code
    finally:
        if own:
            client.close()
