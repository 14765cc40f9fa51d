"""Our side of the benchmark: the real services as separate OS processes.

API, scheduler, extractor and loader each run as ``datamig serve <name>`` (the same
helper the end-to-end tests use) on RabbitMQ with PostgreSQL metadata. Each case
creates a job over HTTP, executes it and waits; peak RSS of every service process is
read from ``/proc/<pid>/status`` (VmHWM), reset before each case via ``clear_refs``.
"""
from __future__ import annotations

import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path

from datetime import datetime, timezone

import httpx
import sqlalchemy as sa

from bench import breakdown, data
from shared.topology import Topology
from tests.e2e.stack import FINISHED, Stack, free_port, stack_env

AMQP_URL = os.environ.get("DM_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
WORKERS = ("scheduler", "extractor", "loader")
TUNED = {"DM_BATCH_ROWS": "50000", "DM_HEARTBEAT_S": "2", "DM_POLL_S": "0.1"}
# settings the end-to-end tests' stack_env sets for speed of the tests; the benchmark removes them
TEST_SETTINGS = ("DM_BATCH_ROWS", "DM_POLL_S", "DM_HEARTBEAT_S", "DM_RETRY_BASE_S", "DM_RETRY_MAX_S")
POLL_S = 0.01  # how often the 1-row latency cases ask the API whether an execution finished
# The data cases ask every 0.2 s and take the execution's own finished time (the worker's report of
# its end): asking every 10 ms kept the API and this client busy for ~0.35 of a core beside the run.
DATA_POLL_S = 0.2


def peak_rss_mb(pid: int) -> float:
    """Peak resident set of a process (VmHWM) in MB, 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


class BenchStack:
    """A distributed stack with its own metadata database and queue prefix."""

    def __init__(self, *, tuned: bool = False, env: dict[str, str] | None = None) -> None:
        self.meta_db = f"dm_bench_meta_{uuid.uuid4().hex[:6]}"
        self._admin = sa.create_engine(data.PG_ADMIN, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.meta_db}"')
        # the defaults a user runs; --tuned adds the settings earlier figures were taken with
        self._open("dm-bench-", database_url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.meta_db}",
                   amqp_url=AMQP_URL, prefix=(prefix := f"dmbench{uuid.uuid4().hex[:6]}"),
                   extra={**(TUNED if tuned else {}), **(env or {})})
        self.metrics_ports = {name: free_port() for name in breakdown.SERVICES}
        self.projects: dict[str, int] = {}
        self.topology = Topology(prefix)

    def _open(self, tmp_prefix: str, *, database_url: str, amqp_url: str, prefix: str, extra: dict[str, str]) -> None:
        """The stack's environment (stack_env without the tests' settings, plus ``extra``), its
        Stack and an HTTP client holding the admin token; nothing started yet."""
        self.tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix))
        self.token = secrets.token_urlsafe(24)
        environment = stack_env(self.tmp, database_url=database_url, amqp_url=amqp_url, prefix=prefix)
        for name in TEST_SETTINGS:  # the product's defaults, not the tests' settings
            environment.pop(name, None)
        environment.update({"DM_ADMIN_TOKEN": self.token, "DM_LOG_LEVEL": "WARNING", **extra})
        (self.tmp / "logs").mkdir()
        self.stack = Stack(f"http://127.0.0.1:{environment['DM_API_PORT']}", environment, self.tmp / "logs")
        self.http = httpx.Client(base_url=self.stack.base_url, timeout=60,
                                 headers={"Authorization": f"Bearer {self.token}"})

    def start(self) -> None:
        self.stack.start("api", "api")
        self.stack.wait_healthy()
        for name in WORKERS:
            port = self.metrics_ports.get(name)
            self.stack.start(name, name, env={"DM_METRICS_PORT": str(port)} if port else None)
        time.sleep(2.0)
        self.projects["pg"] = self._project("bench pg", data.PG_URL)
        self.projects["mysql"] = self._project("bench mariadb", data.MY_URL)

    def _project(self, name: str, url: str) -> int:
        r = self.http.post("/api/projects", json={"name": name, "url": url})
        if r.status_code != 201:
            raise RuntimeError(f"creating project {name}: {r.status_code} {r.text}")
        return r.json()["id"]

    def run(self, *, source: str, sql: str, dest: str, table: str, mode: str, timeout_s: float = 3600,
            verify: str | None = None) -> dict:
        """Create and execute a one-step job; returns the finished execution plus wall time and peak RSS."""
        r = self.http.post("/api/jobs", json={
            "name": f"bench {mode} {source}->{dest} {uuid.uuid4().hex[:6]}",
            "steps": [{"name": "read", "project_id": self.projects[source], "sql": sql}],
            "destination": {"project_id": self.projects[dest], "table": table, "mode": mode},
            "timeout_minutes": 120, "max_retries": 0, **({"verify": verify} if verify else {})})
        if r.status_code != 201:
            raise RuntimeError(f"creating job: {r.status_code} {r.text}")
        pids = {n: p.pid for n, p in self.stack.procs.items() if n in WORKERS}
        for pid in pids.values():
            reset_peak(pid)
        before = self.phase_sums()
        started, started_at = time.perf_counter(), datetime.now(timezone.utc)
        r = self.http.post(f"/api/jobs/{r.json()['id']}/execute")
        if r.status_code != 202:
            raise RuntimeError(f"executing job: {r.status_code} {r.text}")
        execution_id = r.json()["execution_id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = self.http.get(f"/api/executions/{execution_id}").json()
            if body.get("status") in FINISHED:
                break
            time.sleep(DATA_POLL_S)
        else:
            raise RuntimeError(f"execution {execution_id} did not finish in {timeout_s}s")
        finished = _seconds_between(started_at.isoformat(), body.get("finished_at"))
        body["wall_s"] = finished if finished is not None and finished > 0 else time.perf_counter() - started
        body["rss_mb"] = {n: round(peak_rss_mb(pid), 1) for n, pid in pids.items()}
        time.sleep(0.2)  # the loader observes "commit" after the API has the final status
        body["phases"] = breakdown.as_json(breakdown.delta(before, self.phase_sums()))
        body["dispatch_s"] = _seconds_between(body.get("queued_at"), body.get("started_at"))
        return body

    def phase_sums(self) -> breakdown.Sums:
        """``datamig_phase_seconds`` sums of extractor and loader now (empty when a scrape fails)."""
        sums: breakdown.Sums = {}
        for port in self.metrics_ports.values():
            try:
                sums.update(breakdown.parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text))
            except httpx.HTTPError:
                pass
        return sums

    def latency(self, *, runs: int) -> list[float]:
        """Milliseconds from execute to completed of a 1-row upsert job (PostgreSQL → PostgreSQL)."""
        with data.pg().begin() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_one (id int PRIMARY KEY, note text)")
        r = self.http.post("/api/jobs", json={
            "name": f"bench dispatch {uuid.uuid4().hex[:6]}",
            "steps": [{"name": "one", "project_id": self.projects["pg"], "sql": "SELECT 1 AS id, 'one' AS note"}],
            "destination": {"project_id": self.projects["pg"], "table": "bench_one", "mode": "upsert"},
            "max_retries": 0})
        if r.status_code != 201:
            raise RuntimeError(f"creating job: {r.status_code} {r.text}")
        job, samples = r.json()["id"], []
        for _ in range(runs):
            started = time.perf_counter()
            execution_id = self.http.post(f"/api/jobs/{job}/execute").json()["execution_id"]
            while True:
                body = self.http.get(f"/api/executions/{execution_id}").json()
                if body.get("status") in FINISHED:
                    break
                time.sleep(POLL_S)
            if body["status"] != "completed":
                raise RuntimeError(f"1-row execution {execution_id}: {body['status']} {body.get('error')}")
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    def stop(self) -> None:
        self.http.close()
        self.stack.stop()
        remove_topology(self.topology)
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.meta_db}" WITH (FORCE)')
        self._admin.dispose()

    def logs(self) -> str:
        return self.stack.all_logs()


def remove_topology(topology: Topology) -> None:
    """Delete the stack's fixed queues and exchanges (batch queues expire by themselves), so that
    runs do not leave four queues each on the broker. Best effort: a benchmark result never fails on it."""
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        for queue in (topology.runs, topology.loads, topology.dead, topology.recorder):
            channel.queue_delete(queue)
        for exchange in (topology.events, topology.control):
            channel.exchange_delete(exchange)
        connection.close()
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def _seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds between two ISO timestamps of the API, None when either is missing."""
    if not start or not end:
        return None
    a, b = (datetime.fromisoformat(t) for t in (start, end))
    a, b = (t if t.tzinfo else t.replace(tzinfo=timezone.utc) for t in (a, b))  # the API's times are UTC
    return round((b - a).total_seconds(), 3)
