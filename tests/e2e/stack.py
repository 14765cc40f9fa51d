"""Start the real services as OS processes and talk to them over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.fixtures.servers import BROKER_PREFIXES

REPO = Path(__file__).resolve().parents[2]
FINISHED = {"completed", "partial_success", "failed", "cancelled", "timed_out", "skipped"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    """A running system: ``api`` is an httpx client on its base URL."""

    base_url: str
    env: dict
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.env['DM_ADMIN_TOKEN']}"}

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, headers=self.headers)

    def start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        """Start ``datamig serve *args`` as ``name``; ``env`` adds variables for this process only."""
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", *args], cwd=REPO,
                                env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def wait_healthy(self, timeout_s: float = 120) -> None:  # 2 cores shared by 8 engineers' suites
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log(name)[-3000:]}")
            time.sleep(0.05)  # a boot is waited for by every e2e test: look often
        raise RuntimeError(f"API not healthy in {timeout_s}s: {self.log('api')[-3000:]}")

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self) -> str:
        return "\n".join(f"== {n}\n{self.log(n)}" for n in self.procs)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def wait_finished(self, execution_id: int, timeout_s: float = 120) -> dict:
        deadline = time.monotonic() + timeout_s
        with self.api as client:
            while time.monotonic() < deadline:
                body = client.get(f"/api/executions/{execution_id}").json()
                if body["status"] in FINISHED:
                    return body
                time.sleep(0.1)
        raise AssertionError(f"execution {execution_id} not finished in {timeout_s}s: {body}\n{self.all_logs()[-6000:]}")


def stack_env(tmp_path: Path, *, database_url: str, amqp_url: str, prefix: str, **extra: str) -> dict:
    if amqp_url.startswith("amqp"):
        BROKER_PREFIXES.add(prefix)  # removed from the broker at the end of the test run
    env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    env.update({
        "DM_DATABASE_URL": database_url, "DM_AMQP_URL": amqp_url, "DM_QUEUE_PREFIX": prefix,
        "DM_SECRET_KEY": Fernet.generate_key().decode(), "DM_DATA_DIR": str(tmp_path / "data"),
        "DM_SQLITE_ROOT": tempfile.gettempdir(),  # tests keep their SQLite files under pytest's tmp_path
        "DM_API_PORT": str(free_port()), "DM_POLL_S": "0.2", "DM_HEARTBEAT_S": "1", "DM_LOG_LEVEL": "INFO",
        "DM_ADMIN_TOKEN": "e2e-" + Fernet.generate_key().decode()[:24], "DM_BATCH_ROWS": "2000", "DM_RETRY_BASE_S": "0.5", "DM_RETRY_MAX_S": "2", "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env
