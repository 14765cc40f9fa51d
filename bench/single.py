"""The single-process stack for the benchmark: ``datamig serve all`` (memory transport, SQLite
metadata in its data directory), at the settings a user gets.

:func:`single_process_latency` boots it, runs :meth:`BenchStack.latency` (the 1-row upsert,
execute → completed) and stops it; the case ``dispatch_1row_single`` of ``python -m bench``.
"""
from __future__ import annotations

from bench import data
from bench.runner import BenchStack


class SingleProcessStack(BenchStack):
    """``datamig serve all`` with SQLite metadata and the memory transport."""

    def __init__(self, *, env: dict[str, str] | None = None) -> None:  # noqa: super().__init__ makes a PG db
        self._open("dm-bench-single-", database_url="", amqp_url="memory://", prefix="datamig", extra=dict(env or {}))
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
