"""Incremental jobs under concurrent writers (issue 15), on a PostgreSQL and on a MariaDB source.

Given a source table written by two threads: one inserts rows in short transactions, the other
opens a transaction, inserts a row (its timestamp is the transaction's start, its id taken
then) and commits only after longer than the interval between runs, over and over;
When three incremental jobs run about every second for ~30 s (on the timestamp with no lag,
on the auto-increment id with no lag, on the timestamp with a 2 s lag), then the writers stop
and each job runs twice more (the PostgreSQL and the MariaDB scenario run at the same time,
against one stack, so the suite waits ~30 s once, not twice);
Then each destination holds exactly the source rows, none twice (the lag-free destinations
have no key, so a second copy would show), the lag-free jobs read every row exactly once,
the lagged one wrote every row once and skipped its re-reads, and each run started from the
watermark the previous one committed.

(Over 300 lines: the three tests share one booted stack and the writers' machinery.)
"""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, query, running_stack

pytestmark = pytest.mark.e2e

WRITE_S = 30.0
LONG_HOLD_S = 10.0  # longer than two intervals between runs (a tick of three runs takes 2-6 s on this loaded machine)
SOURCE_DDL = {
    "postgresql": "CREATE TABLE app_events (id BIGSERIAL PRIMARY KEY, ts TIMESTAMPTZ NOT NULL DEFAULT now(), "
                  "writer TEXT NOT NULL)",
    "mysql": "CREATE TABLE app_events (id BIGINT AUTO_INCREMENT PRIMARY KEY, ts DATETIME(6) NOT NULL DEFAULT NOW(6), "
             "writer VARCHAR(10) NOT NULL) ENGINE=InnoDB",
}
DEST_TS = {"postgresql": "TIMESTAMPTZ", "mysql": "TIMESTAMP"}
JOBS = {  # destination table → (column, lag, keyed destination)
    "by_ts": ("ts", None, False),
    "by_id": ("id", None, False),
    "by_ts_lag": ("ts", "2 seconds", True),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    dbs = Databases()
    tmp = tmp_path_factory.mktemp("incremental")
    try:
        # concurrency 6: the three jobs of both engines' scenarios (run at once, see writer_runs) at once
        with running_stack(tmp / "stack", dbs.pg(), unique_name("dmincr"), DM_EXTRACTOR_CONCURRENCY="6",
                           DM_LOADER_CONCURRENCY="6") as stack:
            yield stack, dbs
    finally:
        dbs.drop_all()


class Writers:
    """The two writer threads of the issue; ``stop()`` joins them."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, pool_size=4)
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._guard, args=(f,), daemon=True) for f in (self._short, self._long)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join(10)
        self.engine.dispose()
        assert not self.errors, self.errors

    def _guard(self, work) -> None:  # type: ignore[no-untyped-def]
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.errors.append(exc)

    def _short(self) -> None:
        while not self.done.is_set():
            with self.engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO app_events (writer) VALUES ('short')")
            time.sleep(0.02)

    def _long(self) -> None:
        while not self.done.is_set():
            with self.engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO app_events (writer) VALUES ('long')")
                self.done.wait(LONG_HOLD_S)


def _jobs(client: Client, *, source_id: int, dest_id: int) -> dict[str, int]:
    ids = {}
    for table, (column, lag, _) in JOBS.items():
        ids[table] = client.create_job({
            "name": unique_name(f"incr_{table}"),
            "steps": [{"name": "new events", "project_id": source_id,
                       "sql": f"SELECT id, ts, writer FROM app_events WHERE {column} > @watermark"}],
            "destination": {"project_id": dest_id, "table": table, "mode": "insert_only",
                            **({"key_columns": ["id"]} if lag else {})},
            "incremental": {"column": column, **({"lag": lag} if lag else {})},
            "validate_before_execution": False,  # shorter runs: more of them while a long transaction is open
        })
    return ids


ENGINES = ("postgresql", "mysql")


@pytest.fixture(scope="module")
def writer_runs(stack) -> dict[str, object]:
    """Both engines' scenarios at once, each in a thread of its own (the writers write WRITE_S on
    each source while its three jobs tick): engine → (source, destination, history) or the exception
    its scenario raised; the test of each engine asserts on its own outcome."""
    stack, dbs = stack
    outcomes: dict[str, object] = {}
    for engine in ENGINES:
        try:
            if engine == "mysql":
                require_service("MariaDB", MYSQL_URL)
        except BaseException as exc:  # noqa: BLE001 - skip/fail of that engine's test, raised there
            outcomes[engine] = exc

    def scenario(engine: str) -> None:
        try:
            outcomes[engine] = _write_and_tick(stack, dbs, engine)
        except BaseException as exc:  # noqa: BLE001 - raised by that engine's test
            outcomes[engine] = exc

    threads = [threading.Thread(target=scenario, args=(e,), name=f"writers-{e}") for e in ENGINES
               if e not in outcomes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def _write_and_tick(stack, dbs, engine: str) -> tuple[str, str, dict[str, list[dict]]]:  # type: ignore[no-untyped-def]
    """Given/When of the scenario on one engine's source: (source, destination, each job's history)."""
    source = dbs.pg() if engine == "postgresql" else dbs.mysql()
    dest = dbs.pg()
    with connect(source) as conn:
        conn.exec_driver_sql(SOURCE_DDL[engine])
    with connect(dest) as conn:
        for table, (_, _, keyed) in JOBS.items():
            key = " PRIMARY KEY" if keyed else ""
            conn.exec_driver_sql(f"CREATE TABLE {table} (id BIGINT{key}, ts {DEST_TS[engine]}, writer TEXT)")
    client = Client(stack)
    try:
        jobs = _jobs(client, source_id=client.project(unique_name("src"), source),
                     dest_id=client.project(unique_name("dst"), dest))
        writers = Writers(source)
        runs: dict[str, list[dict]] = {t: [] for t in jobs}
        writers.start()
        try:
            # When: every job runs about every second while the writers write
            until = time.monotonic() + WRITE_S
            while time.monotonic() < until:
                _tick(client, jobs, runs)
        finally:
            writers.stop()
        time.sleep(1.2)  # MariaDB sets NOW() before InnoDB lists the transaction: a 1 s margin
        for _ in range(2):
            _tick(client, jobs, runs)
    finally:
        client.close()
    return source, dest, runs


@pytest.mark.parametrize("engine", ENGINES)
def test_concurrent_writers_lose_no_row_and_write_none_twice(writer_runs, engine: str) -> None:
    outcome = writer_runs[engine]
    if isinstance(outcome, BaseException):
        raise outcome
    source, dest, runs = outcome

    # Then
    source_rows = sorted(query(source, "SELECT id, writer FROM app_events"))
    assert len(source_rows) > 100 and sum(1 for r in source_rows if r[1] == "long") >= WRITE_S / LONG_HOLD_S - 2
    for table, (column, lag, _) in JOBS.items():
        history = runs[table]
        assert all(r["status"] == "completed" for r in history), [(r["id"], r["status"], r["error"]) for r in history]
        assert sorted(query(dest, f"SELECT id, writer FROM {table}")) == source_rows, table
        read = sum(r["rows_read"] for r in history)
        inserted = sum(r["rows_inserted"] for r in history)
        assert inserted == len(source_rows), table
        if lag is None:
            assert read == len(source_rows), (table, read, len(source_rows))  # every row read once
        else:
            assert read >= len(source_rows) and sum(r["rows_skipped"] for r in history) == read - len(source_rows)
        for before, after in zip(history, history[1:]):
            assert after["watermark_from"] == before["watermark_to"], (table, before["id"], after["id"])
        assert history[-1]["watermark_to"] is not None
    advanced = {r["watermark_to"] for r in runs["by_id"]}
    assert len(advanced) > 2, "the integer watermark advanced while the writers were active"


def _tick(client: Client, jobs: dict[str, int], runs: dict[str, list[dict]]) -> None:
    started = time.monotonic()
    ids = {table: client.execute(job_id) for table, job_id in jobs.items()}
    done = client.wait_all(ids.values(), timeout_s=60)
    for table, eid in ids.items():
        runs[table].append(done[eid])
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


def test_example_3_archives_every_error_once_even_one_committed_late(stack) -> None:
    """examples/incremental-log-archive.yaml as shipped (only its projects point at test databases)."""
    from pathlib import Path

    from services.cliapp.specfile import load_spec_file

    stack, dbs = stack
    src, dst = dbs.pg(), dbs.pg()
    example = Path(__file__).resolve().parents[2] / "examples" / "incremental-log-archive.yaml"
    spec = load_spec_file(example, env={"PRODUCTION_PG_PASSWORD": "x", "ARCHIVE_PG_PASSWORD": "x"}).jobs[0]
    with connect(src) as conn:
        conn.exec_driver_sql("CREATE TABLE application_logs (log_id BIGSERIAL PRIMARY KEY, timestamp TIMESTAMPTZ "
                             "NOT NULL DEFAULT now(), level TEXT, message TEXT, user_id INT, request_id TEXT)")
        conn.exec_driver_sql("INSERT INTO application_logs (timestamp, level, message) VALUES "
                             "('2025-12-31 23:00+00', 'ERROR', 'before initial')")
    with connect(dst) as conn:
        conn.exec_driver_sql("CREATE SCHEMA logs")
        conn.exec_driver_sql("CREATE TABLE logs.application_errors (log_id BIGINT PRIMARY KEY, timestamp TIMESTAMPTZ, "
                             "level TEXT, message TEXT, user_id INT, request_id TEXT)")

    def log(*levels: str, tag: str) -> None:
        with connect(src) as c:
            for level in levels:
                c.exec_driver_sql(f"INSERT INTO application_logs (level, message) VALUES ('{level}', '{tag}')")

    client = Client(stack)
    try:
        ids = {"Production DB": client.project(unique_name("prod"), src),
               "Archive DB": client.project(unique_name("archive"), dst)}
        job_id = client.create_job({**spec.to_spec(ids).model_dump(mode="json"), "name": unique_name("example3")})
        log("ERROR", "WARN", "INFO", "ERROR", tag="early")
        late = sa.create_engine(src)
        with late.connect() as held:  # Given a request whose transaction logs an ERROR and commits late
            held.exec_driver_sql("BEGIN")
            held.exec_driver_sql("INSERT INTO application_logs (level, message) VALUES ('ERROR', 'late')")
            log("WARN", "DEBUG", tag="after")
            first = client.run(job_id)
            held.exec_driver_sql("COMMIT")
        late.dispose()
        log("ERROR", tag="next hour")
        second = client.run(job_id)

        # Then the first run archived what was complete: the errors and warnings logged before the late
        # transaction began; the second everything else, and re-read the first's rows only within the lag
        assert (first["status"], first["rows_inserted"]) == ("completed", 3), first
        assert second["status"] == "completed" and second["watermark_from"] == first["watermark_to"]
        assert (second["rows_inserted"], second["rows_skipped"]) == (3, 3), second
        wanted = query(src, "SELECT log_id, message FROM application_logs WHERE level IN ('ERROR', 'WARN') "
                            "AND timestamp > '2026-01-01' ORDER BY log_id")
        assert query(dst, "SELECT log_id, message FROM logs.application_errors ORDER BY log_id") == wanted
        assert [m for _, m in wanted] == ["early", "early", "early", "late", "after", "next hour"]
    finally:
        client.close()


def test_preview_validation_nulls_and_a_keyless_lag(stack) -> None:
    """What a user sees around the watermark: the value the next run binds, NULLs, a refused overlap."""
    stack, dbs = stack
    src, dst = dbs.pg(), dbs.pg()
    with connect(src) as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INT PRIMARY KEY, ts TIMESTAMPTZ)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, '2026-01-01 00:00+00'), (2, '2026-01-02 00:00+00'), "
                             "(3, '2026-01-03 00:00+00'), (4, NULL), (5, NULL)")
    with connect(dst) as conn:
        conn.exec_driver_sql("CREATE TABLE keyed (id INT PRIMARY KEY, ts TIMESTAMPTZ)")
        conn.exec_driver_sql("CREATE TABLE keyless (id INT, ts TIMESTAMPTZ)")
    client = Client(stack)
    try:
        source_id, dest_id = client.project(unique_name("src"), src), client.project(unique_name("dst"), dst)

        def job(table: str, **incremental: object) -> int:
            return client.create_job({
                "name": unique_name("incr"), "max_retries": 0,
                "steps": [{"name": "t", "project_id": source_id,
                           "sql": "SELECT id, ts FROM t WHERE ts > @watermark OR ts IS NULL"}],
                "destination": {"project_id": dest_id, "table": table},
                "incremental": {"column": "ts", **incremental}})

        # Preview and validation show the value the next run binds: stored minus lag
        lagged = job("keyed", lag="1 day")
        assert client.http.put(f"/api/jobs/{lagged}/watermark", json={"value": "2026-01-03T00:00:00+00:00"}).status_code == 200
        checked = client.http.post(f"/api/jobs/{lagged}/validate").json()
        assert checked["ok"] and checked["watermark"]["next_value"] == "2026-01-02 00:00:00+00:00", checked
        shown = client.http.post(f"/api/jobs/{lagged}/preview").json()
        assert shown["watermark"]["kind"] == "timestamptz"
        assert sorted(r[0] for r in shown["steps"][0]["rows"]) == [3, 4, 5]  # ts > 2026-01-02, and the NULLs

        # NULLs are counted, not silently dropped; include_nulls writes them
        counted = client.run(job("keyed"))
        assert counted["status"] == "completed" and counted["warnings"].get("watermark_nulls") == 2, counted
        assert query(dst, "SELECT id FROM keyed ORDER BY id") == [(1,), (2,), (3,)]
        included = client.run(job("keyed", include_nulls=True))
        assert included["rows_inserted"] == 2 and query(dst, "SELECT count(*) FROM keyed") == [(5,)]

        # A lag into a table without a key would write the overlap twice: refused, nothing written
        refused = client.run(job("keyless", lag="1 hour"))
        assert refused["status"] == "failed" and "has no primary key" in refused["error"]["message"], refused
        assert query(dst, "SELECT count(*) FROM keyless") == [(0,)]
        assert client.http.get(f"/api/jobs/{refused['job_id']}").json()["watermark"] is None
    finally:
        client.close()
