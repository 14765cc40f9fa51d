"""The embedded engine the transform runs on: one DuckDB connection per execution.

DuckDB (in process, no server) runs the transform's SQL over Arrow streams. The
connection is locked down before any user SQL runs: no file system or network access,
no extension loading (``enable_external_access=false``, configuration locked), so a
transform can only read the ``@resultN`` relations we register. Memory is bounded by
``DM_TRANSFORM_MEMORY_LIMIT``; what does not fit (joins of materialised results,
aggregates, sorts) spills to a private directory under ``DM_TRANSFORM_TEMP_DIR``, capped
by ``DM_TRANSFORM_MAX_TEMP_SIZE``; above the cap the transform fails with a message
naming the setting. Materialised results live in a database file in that same
directory (DuckDB cannot evict an in-memory table), and the cap counts it too: while a
result is being materialised, the directory's size is checked batch by batch. The
directory is removed when the connection closes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

from shared.errors import ConfigError

DEFAULT_MEMORY_LIMIT = "512MB"
DEFAULT_MAX_TEMP_SIZE = "10GB"
DEFAULT_THREADS = 2
_SIZE_UNITS = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 10**3, "MB": 10**6, "GB": 10**9,
               "TB": 10**12, "B": 1}


@dataclass(frozen=True)
class TransformLimits:
    """Where and how much the transform may spill (from the environment, see README)."""

    memory_limit: str = DEFAULT_MEMORY_LIMIT
    max_temp_size: str = DEFAULT_MAX_TEMP_SIZE
    temp_dir: str = ""
    threads: int = DEFAULT_THREADS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "TransformLimits":
        """Raises ConfigError naming the variable for a value DuckDB would not take."""
        env = os.environ if env is None else env
        limits = cls(memory_limit=env.get("DM_TRANSFORM_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT).strip(),
                     max_temp_size=env.get("DM_TRANSFORM_MAX_TEMP_SIZE", DEFAULT_MAX_TEMP_SIZE).strip(),
                     temp_dir=env.get("DM_TRANSFORM_TEMP_DIR", "").strip(),
                     threads=_int(env.get("DM_TRANSFORM_THREADS", str(DEFAULT_THREADS)), "DM_TRANSFORM_THREADS"))
        for name, value in (("DM_TRANSFORM_MEMORY_LIMIT", limits.memory_limit),
                            ("DM_TRANSFORM_MAX_TEMP_SIZE", limits.max_temp_size)):
            if not _is_size(value):
                raise ConfigError(f"{name}={value!r}: give a size such as 512MB or 10GB")
        return limits


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{name}={value!r}: give a whole number of at least 1")
    return number


def size_bytes(value: str) -> int:
    """``"10GB"`` → 10,000,000,000 (KB/MB/GB/TB are powers of 1000, KiB… of 1024, as DuckDB reads them);
    0 for a value that is not a size."""
    text = value.upper().replace(" ", "")
    unit = next((u for u in _SIZE_UNITS if text.endswith(u)), "")
    number = text[: len(text) - len(unit)] if unit else text
    try:
        return max(int(float(number) * _SIZE_UNITS.get(unit, 1)), 0)
    except ValueError:
        return 0


def _is_size(value: str) -> bool:
    return size_bytes(value) > 0


class Engine:
    """A locked-down DuckDB connection with a private spill directory."""

    def __init__(self, limits: TransformLimits) -> None:
        self.limits = limits
        self.temp_dir = tempfile.mkdtemp(prefix="dm_transform_", dir=limits.temp_dir or None)
        self.cap_bytes = size_bytes(limits.max_temp_size)
        try:
            self.con = duckdb.connect(os.path.join(self.temp_dir, "results.duckdb"), config={
                "memory_limit": limits.memory_limit, "max_temp_directory_size": limits.max_temp_size,
                "temp_directory": os.path.join(self.temp_dir, "spill"), "threads": str(limits.threads),
                "autoinstall_known_extensions": "false", "autoload_known_extensions": "false",
            })
            self.con.execute("SET TimeZone = 'UTC'")
            self.con.execute("SET enable_external_access = false")
            self.con.execute("SET lock_configuration = true")
        except BaseException:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            raise

    def disk_used(self) -> int:
        """Bytes in the private directory: the results' database file and spill files."""
        total = 0
        for root, _, files in os.walk(self.temp_dir):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass
        return total

    def interrupt(self) -> None:
        """Stop the running query from any thread (it raises duckdb.InterruptException)."""
        try:
            self.con.interrupt()
        except Exception:  # noqa: BLE001 - best effort; the cancel flag stops the next batch anyway
            pass

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
