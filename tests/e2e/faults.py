"""Helpers for the fault tests: a distributed stack, throttled destinations, a TCP proxy."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx
import sqlalchemy as sa

from tests.e2e.stack import Stack
from tests.fixtures.stacks import boot

SOURCE_ROWS = 200_000
OLD_ROWS = 1_000
# the fault tests' stack: a worker is lost after 4 s; the extractor blocks on a 4-batch queue of
# 2,000-row batches (bulk ones too), so a run lasts long enough to be interrupted in the middle
FAULT_SETTINGS = {"DM_WORKER_LOST_S": "4", "DM_HEARTBEAT_S": "0.5", "DM_BATCH_ROWS": "2000",
                  "DM_BULK_BATCH_ROWS": "2000", "DM_BATCH_QUEUE_MAX": "4"}


def distributed(tmp_path, metadata_url: str, prefix: str, *, workers: tuple[str, ...] = ("scheduler", "extractor",
                                                                                           "loader"),
                **extra: str) -> Stack:
    """The API and ``workers`` with the fault tests' settings (short worker-lost time, small batch queue)."""
    settings = {**FAULT_SETTINGS, **extra}
    return boot(tmp_path, metadata_url=metadata_url, prefix=prefix, services=("api", *workers), **settings)


def make_source(url: str, rows: int = SOURCE_ROWS) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items AS SELECT g::bigint AS id, 'item ' || g AS name, mod(g, 1000)::numeric(10,2) AS price"
            f" FROM generate_series(1, {rows}) g")
        conn.exec_driver_sql("ALTER TABLE items ADD PRIMARY KEY (id)")
    engine.dispose()


def make_destination(url: str, *, throttle_s: float = 0.0) -> None:
    """items(id PK, name, price) holding OLD_ROWS rows that the source does not have.

    ``throttle_s`` adds a statement trigger that sleeps on every write statement, so that
    a run lasts long enough to be interrupted mid-way."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10,2))")
        conn.exec_driver_sql(f"INSERT INTO items SELECT -g, 'old ' || g, 1 FROM generate_series(1, {OLD_ROWS}) g")
        if throttle_s:
            conn.exec_driver_sql(
                "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN PERFORM pg_sleep({throttle_s}); RETURN NULL; END $$")
            for op in ("INSERT", "UPDATE", "DELETE"):
                conn.exec_driver_sql(f"CREATE TRIGGER slow_{op.lower()} AFTER {op} ON items "
                                     "FOR EACH STATEMENT EXECUTE FUNCTION slow()")
    engine.dispose()


def snapshot(url: str) -> tuple[int, int, int]:
    """(rows, min id, sum of ids): cheap and enough to tell old rows from new ones."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count, low, total = conn.exec_driver_sql("SELECT count(*), min(id), coalesce(sum(id), 0) FROM items").one()
    engine.dispose()
    return int(count), int(low), int(total)


_PROJECTS: dict[tuple[str, ...], int] = {}  # (the stack's identity, database URL) → project id


def project_id(stack: Stack, role: str, url: str) -> int:
    """The stack's project on ``url``, created on first use: named ``role`` (the first one of that
    role on the stack, e.g. "source", "destination"), else ``role n``. Stacks shared by several tests
    get one project per database, never another test's."""
    # ports are reused by later stacks: the metadata database and the random token tell stacks apart
    key = (stack.base_url, stack.env["DM_DATABASE_URL"], stack.env["DM_ADMIN_TOKEN"], url)
    if key not in _PROJECTS:
        with stack.api as api:
            taken = {p["name"] for p in api.get("/api/projects").json()}
            name = role if role not in taken else f"{role} {len(taken) + 1}"
            r = api.post("/api/projects", json={"name": name, "url": url})
            assert r.status_code == 201, r.text
            _PROJECTS[key] = r.json()["id"]
    return _PROJECTS[key]


def create_job(stack: Stack, src_url: str, dst_url: str, *, mode: str, sql: str = "SELECT id, name, price FROM items",
               **options: object) -> int:
    ids = [project_id(stack, "source", src_url), project_id(stack, "destination", dst_url)]
    with stack.api as api:
        body = {"name": f"{mode} job {time.monotonic_ns()}", "steps": [{"name": "items", "project_id": ids[0], "sql": sql}],
                "destination": {"project_id": ids[1], "table": "items", "mode": mode}, **options}
        r = api.post("/api/jobs", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]


def execute(stack: Stack, job_id: int) -> int:
    with stack.api as api:
        r = api.post(f"/api/jobs/{job_id}/execute")
        assert r.status_code == 202, r.text
        return r.json()["execution_id"]


def wait_for(predicate: Callable[[], object], *, timeout_s: float = 60, what: str = "condition",
             stack: Stack | None = None) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    logs = stack.all_logs()[-6000:] if stack else ""
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def execution(stack: Stack, execution_id: int) -> dict:
    return httpx.get(f"{stack.base_url}/api/executions/{execution_id}", timeout=10, headers=stack.headers).json()


def chain(stack: Stack, job_id: int) -> list[dict]:
    """The job's executions, oldest first."""
    items = httpx.get(f"{stack.base_url}/api/executions", params={"job_id": job_id}, timeout=10,
                      headers=stack.headers).json()["items"]
    return sorted(items, key=lambda e: e["id"])


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; while stopped, connections are refused."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server: socket.socket | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(50)
        server.settimeout(0.2)
        self._server = server
        self._stop.clear()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()  # type: ignore[union-attr]
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
