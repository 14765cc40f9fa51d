"""``datamig watermark JOB [--set VALUE | --reset]``: show or change an incremental job's watermark."""
from __future__ import annotations

import argparse
from typing import TextIO

from services.cliapp.client import ApiClient, CliError


def add_watermark_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watermark", help="show an incremental job's stored watermark, or set/reset it")
    p.add_argument("job", metavar="JOB", help="job id or name")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--set", dest="value", metavar="VALUE",
                       help="the new watermark (rows whose column is at most VALUE count as loaded)")
    group.add_argument("--reset", action="store_true", help="start the next run from incremental.initial again")


def run_watermark(client: ApiClient, job: dict, args: argparse.Namespace, *, out: TextIO) -> int:
    """Print (after any change) ``JOB: watermark VALUE``. Raises CliError for a job that is not incremental."""
    if not job.get("incremental"):
        raise CliError(f"job {job['name']!r} has no incremental option")
    if args.reset or args.value is not None:
        job = client.put(f"/api/jobs/{job['id']}/watermark", {"value": None if args.reset else args.value})
    value = job.get("watermark")
    column = job["incremental"]["column"]
    shown = value if value is not None else f"none (the next run starts from {job['incremental'].get('initial') or 'the beginning'})"
    print(f"{job['name']}: watermark of {column}: {shown}", file=out)
    return 0
