"""Baselines measured next to our runs: the tools a data engineer would otherwise use.

Each returns the wall time in seconds, or None with a reason when the tool is missing
or cannot run here. Destinations are emptied (outside the timing) before each run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import data

PSQL = ["psql", "-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", data.DB, "-v", "ON_ERROR_STOP=1"]
MYSQL = ["mysql", "-h", "127.0.0.1", "-uroot", "--local-infile=1", data.DB]
PG_TO_MY_SELECT = ("SELECT id, qty, big, price, ratio, active::int, name, note, day, "
                   "(at AT TIME ZONE 'UTC') FROM bench_src")
INGESTR = Path("/tmp/ingestr-venv/bin/ingestr")
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


def psql_pipe() -> float:
    """``psql \\copy (…) to stdout | psql \\copy … from stdin``, PostgreSQL → PostgreSQL with a PK."""
    data.pg_empty("bench_base")
    out = " ".join(PSQL) + " -c '\\copy (SELECT * FROM bench_src) TO STDOUT'"
    into = " ".join(PSQL) + " -c '\\copy bench_base FROM STDIN'"
    return _timed(["bash", "-c", f"set -o pipefail; {out} | {into}"])


def psql_pipe_binary() -> float:
    """The same pipe in binary COPY format."""
    data.pg_empty("bench_base")
    out = " ".join(PSQL) + " -c '\\copy (SELECT * FROM bench_src) TO STDOUT WITH (FORMAT binary)'"
    into = " ".join(PSQL) + " -c '\\copy bench_base FROM STDIN WITH (FORMAT binary)'"
    return _timed(["bash", "-c", f"set -o pipefail; {out} | {into}"])


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
    if not INGESTR.exists():
        return None
    uri = (f"mysql://root@127.0.0.1:3306/{data.DB}" if source == "mysql"
           else f"postgresql://postgres@127.0.0.1:5432/{data.DB}")
    table = f"{data.DB}.bench_src" if source == "mysql" else "public.bench_src"
    return _timed([str(INGESTR), "ingest", "--yes", "--source-uri", uri, "--source-table", table,
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
