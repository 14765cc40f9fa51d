"""Baselines measured next to our runs: the tools a data engineer would otherwise use.

Each returns the wall time in seconds, or None with a reason when the tool is missing
or cannot run here. Destinations are emptied (outside the timing) before each run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import data

PSQL = ["psql", "-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", data.DB, "-v", "ON_ERROR_STOP=1"]
MYSQL = ["mysql", "-h", "127.0.0.1", "-uroot", "--local-infile=1", data.DB]
PG_TO_MY_SELECT = ("SELECT id, qty, big, price, ratio, active::int, name, note, day, "
                   "(at AT TIME ZONE 'UTC') FROM bench_src")
# ingestr lives in its own virtualenv (its dependencies clash with ours): DM_BENCH_INGESTR names the
# executable, else the first of PATH, /work/tools/ingestr-venv and /tmp/ingestr-venv that has it.
INGESTR_CANDIDATES = (os.environ.get("DM_BENCH_INGESTR", ""), shutil.which("ingestr") or "",
                      "/work/tools/ingestr-venv/bin/ingestr", "/tmp/ingestr-venv/bin/ingestr")
SLING = Path("/tmp/sling-venv/bin/sling")


def _timed(cmd: str | list[str], *, shell: bool = False, env: dict | None = None, timeout_s: float = 1800) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, shell=shell, env=env, capture_output=True, text=True, timeout=timeout_s)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        text = done.stderr or done.stdout
        if ("downloading" in text and ("binary" in text or "CLI" in text)) or "urlopen error" in text:
            raise RuntimeError("cannot run offline: the tool downloads its binary at run time")
        raise RuntimeError(f"{cmd if isinstance(cmd, str) else ' '.join(cmd)} failed: {text[-800:]}")
    return elapsed


def psql_pipe(source: str = "bench_src", ddl: str = data.PG_DDL, *, binary: bool = False,
              through_rabbitmq: bool = False) -> float:
    """``psql \\copy (…) to stdout | psql \\copy … from stdin``, PostgreSQL → PostgreSQL into an
    empty table with a PK shaped by ``ddl`` (text COPY, or binary with ``binary``); with
    ``through_rabbitmq`` the bytes go through a RabbitMQ queue between the two (bench.relay)."""
    engine = data.pg()
    with data._connect(engine) as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_base")
        conn.exec_driver_sql(f"CREATE TABLE bench_base {ddl}")
    engine.dispose()
    fmt = " WITH (FORMAT binary)" if binary else ""
    out = " ".join(PSQL) + f" -c '\\copy (SELECT * FROM {source}) TO STDOUT{fmt}'"
    into = " ".join(PSQL) + f" -c '\\copy bench_base FROM STDIN{fmt}'"
    if not through_rabbitmq:
        return _timed(["bash", "-c", f"set -o pipefail; {out} | {into}"])
    queue, relay = f"dm_bench_relay_{uuid.uuid4().hex[:8]}", f"{sys.executable} -m bench.relay"
    return _timed(["bash", "-c", f"set -o pipefail; ({relay} consume {queue} | {into}) & "
                                 f"({out} | {relay} publish {queue}) && wait $!"])


def psql_pipe_binary(source: str = "bench_src", ddl: str = data.PG_DDL) -> float:
    """The same pipe in binary COPY format."""
    return psql_pipe(source, ddl, binary=True)


def file_load_data() -> float:
    """PostgreSQL → MariaDB: ``\\copy … to`` a file, then ``LOAD DATA LOCAL INFILE`` (both timed)."""
    data.my_empty("bench_base")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tsv"
        out = PSQL + ["-c", f"\\copy ({PG_TO_MY_SELECT}) TO '{path}'"]
        load = MYSQL + ["-e", f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE bench_base"]
        return _timed(out) + _timed(load)


def pgloader() -> float | None:
    """pgloader MariaDB → PostgreSQL, data only into an existing empty table."""
    if not shutil.which("pgloader"):
        return None
    data.pg_empty("bench_pgl")
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench.load"
        spec.write_text(
            f"LOAD DATABASE FROM mysql://root@127.0.0.1:3306/{data.DB}\n"
            f"     INTO postgresql://postgres@127.0.0.1:5432/{data.DB}\n"
            " WITH data only, workers = 4, concurrency = 1\n"
            " INCLUDING ONLY TABLE NAMES MATCHING 'bench_src'\n"
            f" ALTER SCHEMA '{data.DB}' RENAME TO 'public'\n"
            " ALTER TABLE NAMES MATCHING 'bench_src' RENAME TO 'bench_pgl';\n")
        seconds = _timed(["pgloader", "--no-ssl-cert-verification", str(spec)])
    return seconds


def ingestr(source: str) -> float | None:
    """ingestr full refresh (``replace``) into PostgreSQL from ``mysql`` or ``postgresql``."""
    found = next((Path(c) for c in INGESTR_CANDIDATES if c and Path(c).exists()), None)
    if found is None:
        return None
    engine = data.pg()  # a fresh destination each time: a second run into its table fails to encode
    with data._connect(engine) as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_ing")
    engine.dispose()
    uri = (f"mysql://root@127.0.0.1:3306/{data.DB}" if source == "mysql"
           else f"postgresql://postgres@127.0.0.1:5432/{data.DB}")
    table = f"{data.DB}.bench_src" if source == "mysql" else "public.bench_src"
    return _timed([str(found), "ingest", "--yes", "--source-uri", uri, "--source-table", table,
                   "--dest-uri", f"postgresql://postgres@127.0.0.1:5432/{data.DB}",
                   "--dest-table", "public.bench_ing", "--incremental-strategy", "replace"])


def sling(source: str) -> float | None:
    """Sling full refresh into PostgreSQL from ``mysql`` or ``postgresql``."""
    if not SLING.exists():
        return None
    env = {**os.environ, "SRC": (f"mysql://root@127.0.0.1:3306/{data.DB}" if source == "mysql"
                                 else f"postgresql://postgres@127.0.0.1:5432/{data.DB}?sslmode=disable"),
           "DST": f"postgresql://postgres@127.0.0.1:5432/{data.DB}?sslmode=disable"}
    stream = f"{data.DB}.bench_src" if source == "mysql" else "public.bench_src"
    return _timed([str(SLING), "run", "--src-conn", "SRC", "--src-stream", stream, "--tgt-conn", "DST",
                   "--tgt-object", "public.bench_sling", "--mode", "full-refresh"], env=env)


# Floors: what the databases alone take for the work a goal compares, with no tool in between.
# They say how low a ratio can go on this machine, not what a tool achieves; the goals table
# prints them under the goals they bound (bench.report.FLOORS).

def _keyed_sql(mode: str, path: Path) -> str:
    """One psql script: the client COPY of the source's rows into a temporary staging table and
    the set-wise merge a keyed mode needs (``INSERT … ON CONFLICT DO UPDATE … WHERE`` changed;
    sync_delete also deletes destination keys the source lacks), in one transaction."""
    rest = [c for c in data.COLUMNS if c != "id"]
    sets = ", ".join(f"{c} = excluded.{c}" for c in rest)
    old = ", ".join(f"d.{c}" for c in rest)
    new = ", ".join(f"excluded.{c}" for c in rest)
    sql = ["BEGIN;", "CREATE TEMP TABLE s (LIKE bench_dst) ON COMMIT DROP;", f"\\copy s FROM '{path}'"]
    if mode == "sync_delete":
        sql.append("ALTER TABLE s ADD PRIMARY KEY (id);")
    sql.append(f"INSERT INTO bench_dst AS d SELECT * FROM s ON CONFLICT (id) DO UPDATE SET {sets} "
               f"WHERE ({old}) IS DISTINCT FROM ({new});")
    if mode == "sync_delete":
        sql.append("DELETE FROM bench_dst d WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.id = d.id);")
    sql.append("COMMIT;")
    return "\n".join(sql) + "\n"


def floors_keyed(rows: int) -> dict[str, float]:
    """``floor_truncate_sql``, ``floor_upsert_sql``, ``floor_sync_delete_sql``: the source's rows as
    a COPY text file (written outside the timing), then timed: truncate_load as ``TRUNCATE`` +
    ``\\copy`` into the keyed table; upsert and sync_delete as ``\\copy`` into a staging table +
    one merge statement, into the same 1M-row destination the cases get (bench.data.pg_existing)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "src.copy"
        _timed(PSQL + ["-c", f"\\copy (SELECT * FROM bench_src) TO '{path}'"])
        data.pg_empty("bench_dst")
        out["floor_truncate_sql"] = _timed(PSQL + ["-c", "BEGIN", "-c", "TRUNCATE bench_dst",
                                                   "-c", f"\\copy bench_dst FROM '{path}'", "-c", "COMMIT"])
        for mode in ("upsert", "sync_delete"):
            data.pg_existing("bench_dst", rows)
            script = Path(tmp) / f"{mode}.sql"
            script.write_text(_keyed_sql(mode, path))
            out[f"floor_{mode}_sql"] = _timed(PSQL + ["-f", str(script)])
    data.pg_empty("bench_dst")
    return out


def mariadb_psql_pipe() -> float:
    """``mariadb --batch | psql COPY``: MariaDB → PostgreSQL through the two C clients into an empty
    table with the primary key (NULL notes sent as empty text: the pipe has no NULL marker)."""
    data.pg_empty("bench_base")
    select = ("SELECT id, qty, big, price, ratio, active, name, IFNULL(note, ''), day, at FROM bench_src")
    out = " ".join(MYSQL[:-2]) + f" -N -B --quick {data.DB} -e \"{select}\""
    into = " ".join(PSQL) + " -c '\\copy bench_base FROM STDIN'"
    return _timed(["bash", "-c", f"set -o pipefail; {out} | {into}"])



def rabbitmq_pipe() -> float:
    """The binary psql COPY pipe with RabbitMQ in the middle (bench.relay: 4 MiB transient messages,
    publisher confirms, one prefetched delivery): the least an extractor and a loader on RabbitMQ
    can cost above ``psql_pipe_binary``, into the same empty table with the primary key."""
    return psql_pipe(binary=True, through_rabbitmq=True)
