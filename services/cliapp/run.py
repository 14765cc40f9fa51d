"""``datamig run JOB [--wait]``: queue a manual execution and follow it to the end.

While waiting, a progress line goes to stderr: rewritten in place about twice a second
on a terminal, or printed every few seconds (and on each status change) otherwise.
A failed attempt that the server retries is followed into the retry unless
``--no-follow-retries``. Exit codes: 0 completed, 3 partial_success, 1 failed,
cancelled, timed_out or skipped, 130 when interrupted (the execution keeps running).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from services.cliapp.client import ApiClient
from services.cliapp.output import count, rate, seconds

POLL_S = 0.5
PLAIN_EVERY_S = 5.0
FAILED_ROWS_SHOWN = 5
FINISHED = {"completed", "partial_success", "failed", "cancelled", "timed_out", "skipped"}
EXIT_CODES = {"completed": 0, "partial_success": 3}
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
SPINNER = "|/-\\"


def progress_line(execution: dict[str, Any], *, elapsed_s: float, tick: int = 0) -> str:
    status = execution["status"]
    spin = f"{SPINNER[tick % len(SPINNER)]} " if tick >= 0 else ""
    parts = [f"{spin}execution {execution['id']} {status}", f"read {count(execution.get('rows_read'))}",
             f"written {count(execution.get('rows_written'))}"]
    if execution.get("rows_failed"):
        parts.append(f"failed {count(execution['rows_failed'])}")
    if execution.get("rows_per_second") is not None:
        parts.append(f"{rate(execution['rows_per_second'])} rows/s")
    duration = execution.get("duration_seconds")
    parts.append(f"elapsed {seconds(duration if duration is not None else elapsed_s)}")
    return "  ".join(parts)


def final_line(execution: dict[str, Any]) -> str:
    e = execution
    took = f" in {e['duration']}" if e.get("duration") else ""
    text = (f"execution {e['id']} {e['status']}{took}: read {count(e.get('rows_read'))}, written "
            f"{count(e.get('rows_written'))} (inserted {count(e.get('rows_inserted'))}, updated "
            f"{count(e.get('rows_updated'))}, deleted {count(e.get('rows_deleted'))}, skipped "
            f"{count(e.get('rows_skipped'))}), failed {count(e.get('rows_failed'))}")
    if e.get("rows_per_second") is not None:
        text += f", {rate(e['rows_per_second'])} rows/s"
    check = e.get("verification") or {}
    if check.get("outcome") in ("passed", "failed"):  # the loader's check before COMMIT (job option verify)
        text += f"; verification ({check.get('method')}) {check['outcome']} in {check.get('seconds')} s"
    return text


class _Progress:
    def __init__(self, err: TextIO, *, tty: bool, clock: Callable[[], float]) -> None:
        self.err, self.tty, self.clock = err, tty, clock
        self.started = clock()
        self.last_plain, self.last_status, self.tick = -PLAIN_EVERY_S, "", 0

    def show(self, execution: dict[str, Any]) -> None:
        now = self.clock()
        if self.tty:
            line = progress_line(execution, elapsed_s=now - self.started, tick=self.tick)
            self.err.write("\r\x1b[K" + line)
            self.tick += 1
        elif now - self.last_plain >= PLAIN_EVERY_S or execution["status"] != self.last_status:
            self.err.write(progress_line(execution, elapsed_s=now - self.started, tick=-1) + "\n")
            self.last_plain = now
        self.last_status = execution["status"]
        self.err.flush()

    def clear(self) -> None:
        if self.tty:
            self.err.write("\r\x1b[K")
            self.err.flush()


def find_retry(client: ApiClient, execution: dict[str, Any]) -> dict[str, Any] | None:
    page = client.get("/api/executions", job_id=execution["job_id"], limit=50)
    return next((e for e in page["items"] if e.get("retry_of") == execution["id"]), None)


def report_problem(client: ApiClient, execution: dict[str, Any], err: TextIO) -> None:
    """The error (message and kind) and the first failed rows."""
    details = client.get(f"/api/executions/{execution['id']}/errors", limit=FAILED_ROWS_SHOWN)
    if details.get("message"):
        print(f"error ({details.get('kind') or 'error'}): {details['message']}", file=err)
    for row in details.get("failed_rows", []):
        print(f"  row {row['position']}: {row['error']}  values={json.dumps(row['values'], default=str)}", file=err)
    hidden = details.get("failed_rows_total", 0) - len(details.get("failed_rows", []))
    if hidden > 0:
        print(f"  … and {hidden:,} more failed rows (GET /api/executions/{execution['id']}/errors)", file=err)


def wait_for(client: ApiClient, execution_id: int, *, err: TextIO, tty: bool, follow_retries: bool = True,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
    """Follow an execution (and its retries) to the end; returns the exit code."""
    progress = _Progress(err, tty=tty, clock=clock)
    while True:
        execution = client.get(f"/api/executions/{execution_id}")
        if execution["status"] not in FINISHED:
            progress.show(execution)
            sleep(POLL_S)
            continue
        progress.clear()
        print(final_line(execution), file=err)
        code = EXIT_CODES.get(execution["status"], EXIT_FAILED)
        if code:
            report_problem(client, execution, err)
        retry = find_retry(client, execution) if follow_retries and code == EXIT_FAILED else None
        if retry is None:
            return code
        print(f"retrying as execution {retry['id']} (attempt {retry['attempt']})", file=err)
        execution_id = retry["id"]


def run_job(client: ApiClient, job: dict[str, Any], *, wait: bool, out: TextIO, err: TextIO, tty: bool,
            follow_retries: bool = True) -> int:
    queued = client.post(f"/api/jobs/{job['id']}/execute")
    execution_id = queued["execution_id"]
    print(f'execution {execution_id} queued for job "{job["name"]}" (id {job["id"]})', file=out)
    if not wait:
        return 0
    out.flush()
    try:
        return wait_for(client, execution_id, err=err, tty=tty, follow_retries=follow_retries)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; execution {execution_id} keeps running "
              f"(cancel it with POST /api/executions/{execution_id}/cancel)", file=err)
        return EXIT_INTERRUPTED
