"""The single-process stack for the benchmark: ``datamig serve all`` (memory transport, SQLite
metadata in its data directory), at the settings a user gets.

:func:`single_process_latency` boots it, runs :meth:`BenchStack.latency` (the 1-row upsert,
execute → completed) and stops it; the case ``dispatch_1row_single`` of ``python -m bench``.
"""
from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import httpx

from bench import data
from bench.runner import BenchStack
from shared import settings
from tests.e2e.stack import Stack, stack_env

# stack_env presets tuned test values (0.2 s poll, 1 s heartbeat, 2,000-row batches): undo them
DEFAULTS = {"DM_POLL_S": str(settings.DEFAULT_POLL_S), "DM_HEARTBEAT_S": str(settings.DEFAULT_HEARTBEAT_S),
            "DM_BATCH_ROWS": str(settings.DEFAULT_BATCH_ROWS)}


class SingleProcessStack(BenchStack):
    """``datamig serve all`` with SQLite metadata and the memory transport."""

    def __init__(self, *, env: dict[str, str] | None = None) -> None:  # noqa: super().__init__ makes a PG db
        self.tmp = Path(tempfile.mkdtemp(prefix="dm-bench-single-"))
        self.token = secrets.token_urlsafe(24)
        extra = {**DEFAULTS, "DM_ADMIN_TOKEN": self.token, "DM_LOG_LEVEL": "WARNING", **(env or {})}
        environment = stack_env(self.tmp, database_url="", amqp_url="memory://", prefix="datamig", **extra)
        (self.tmp / "logs").mkdir()
        self.stack = Stack(f"http://127.0.0.1:{environment['DM_API_PORT']}", environment, self.tmp / "logs")
        self.http = httpx.Client(base_url=self.stack.base_url, timeout=60,
                                 headers={"Authorization": f"Bearer {self.token}"})
        self.projects: dict[str, int] = {}

    def start(self) -> None:
        self.stack.start("all", "all")
        self.stack.wait_healthy()
        self.projects["pg"] = self._project("bench pg", data.PG_URL)

    def stop(self) -> None:
        self.http.close()
        self.stack.stop()


def single_process_latency(*, runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Milliseconds from execute to completed of the 1-row upsert on ``datamig serve all``."""
    stack = SingleProcessStack(env=env)
    try:
        stack.start()
        return stack.latency(runs=runs)
    finally:
        stack.stop()
