"""Verification of one execution's load, inside THE destination transaction, before COMMIT.

The job option ``verify`` (DESIGN.md ``job.verify``) chooses the level; the outcome becomes the
execution's ``verification`` in history. What the destination must hold, after the mode and
without the rows that failed (partial_success), against what the loader received from the
extractor:

* ``truncate_load``, ``sync_delete``: exactly the source set (sync_delete: a failed row's key
  that the destination already held keeps its old row, as the mode promises);
* ``upsert``: every source row, with the source's values;
* ``insert_only``: every source key (a skipped row keeps its old values; a new row has the
  source's values).

Levels:

* ``none``: nothing is checked.
* ``count`` (default): counts computed by the database on the destination and on the session's
  temporary key tables (keys written, keys seen by sync_delete): the rows the loader received
  must equal the rows the extractor said it read; written rows = received - failed; every written
  key is in the destination; sync_delete leaves no key outside the source; truncate_load's table
  holds exactly written rows; a keyless insert_only adds exactly its rows (a ``count(*)`` at the
  start and at the end). A count cannot see a changed value.
* ``checksum``: additionally, each written row's hash (MD5 of its canonical text,
  :mod:`shared.dialects.checksum`) is computed **on the loader's staging table** (the values
  exactly as written, typed like the destination) as each batch is applied, and compared, key by
  key, with the hash of the destination row at the end. It finds changed values (a trigger, a
  concurrent writer) but not a conversion between source and staging (``datamig compare`` checks
  the source itself). Plain-insert modes then go through staging too, and rows applied by
  server-side row isolation are staged again to be hashed, so checksum costs more.

Without a key only counts and, for truncate_load, a whole-table checksum can be compared;
differing rows are named by key (up to ``KEYS_LIMIT``) wherever a key exists.
A mismatch raises :class:`VerificationFailed`; the caller rolls back.
"""
from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from shared.dialects.checksum import sum_value
from shared.dialects.loading import key_match
from shared.dialects.verify_sql import FRESH, RH, RowHash, create_verify_table
from shared.errors import ConfigError, DatamigError
from shared.jobspec import Mode
from shared.jsonsafe import json_safe
from shared.load.destination import Destination

LEVELS = ("none", "count", "checksum")
KEYS_LIMIT = 100  # differing keys kept in the execution's verification
KEYS_IN_MESSAGE = 5


class VerificationFailed(DatamigError):
    """The destination does not hold what the execution wrote; ``verification`` says how."""

    kind = "verification"

    def __init__(self, table: str, verification: dict) -> None:
        self.verification = verification
        keys = verification.get("keys") or []
        shown = "; ".join(f"{k['problem']} {_key_text(k['key'])}" for k in keys[:KEYS_IN_MESSAGE])
        more = f" (and {len(keys) - KEYS_IN_MESSAGE} more keys in the verification)" if len(keys) > KEYS_IN_MESSAGE else ""
        super().__init__(f"verification ({verification['method']}) of {table} failed, nothing was committed: "
                         + "; ".join(verification["problems"]) + (f". Keys: {shown}{more}" if shown else ""))


def _key_text(key: dict) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in key.items()) + ")"


class Verifier:
    """One load session's verification: created at begin, fed per batch, run before COMMIT."""

    def __init__(self, conn: sa.Connection, *, level: str, mode: Mode, dest: Destination, token: str,
                 written: sa.TableClause | None, seen: sa.TableClause | None, temp_prefix: str = "TEMPORARY") -> None:
        self.level, self.mode, self.dest, self.written, self.seen = level, mode, dest, written, seen
        self.prep = conn.dialect.identifier_preparer
        self.target = self.prep.format_table(dest.table)
        self.vfy: sa.TableClause | None = None
        self.pending: sa.TableClause | None = None
        self.token, self._rows_table = token, None  # rows applied by server-side isolation, hashed here
        self.before: int | None = None
        if level == "checksum":
            try:
                self.hash = RowHash(conn, dest.table, dest.columns)
            except ConfigError:
                raise ConfigError(f"verify: checksum is not supported for {conn.dialect.name} destinations "
                                  "(PostgreSQL, MySQL/MariaDB and SQLite are); use verify: count") from None
            self.vfy = create_verify_table(conn, f"dm_vfy_{token}", dest.table, dest.key, temp_prefix=temp_prefix)
            if mode is Mode.insert_only and dest.key:  # which staged rows are new is known only before the insert
                self.pending = create_verify_table(conn, f"dm_vfp_{token}", dest.table, dest.key,
                                                   temp_prefix=temp_prefix)
        if mode is Mode.insert_only and not dest.key:
            self.before = self._count(conn, self.target)

    # ------------------------------------------------------------------ per batch (checksum only)
    def stage(self, conn: sa.Connection, staging: sa.TableClause) -> None:
        """Before the mode statement: insert_only notes each staged row's hash and whether it is new."""
        if self.pending is None:
            return
        name = self.prep.format_table(self.pending)
        conn.exec_driver_sql(f"DELETE FROM {name}")
        match = " AND ".join(f"d.{self._q(k)} = s.{self._q(k)}" for k in self.dest.key)
        fresh = f"CASE WHEN EXISTS (SELECT 1 FROM {self.target} d WHERE {match}) THEN 0 ELSE 1 END"
        conn.exec_driver_sql(self._insert_hashes(name, staging, fresh))

    def keep(self, conn: sa.Connection, staging: sa.TableClause) -> None:
        """After the batch's mode statement succeeded: its rows join the expectation."""
        if self.vfy is None:
            return
        name = self.prep.format_table(self.vfy)
        if self.pending is not None:
            conn.exec_driver_sql(f"INSERT INTO {name} SELECT * FROM {self.prep.format_table(self.pending)}")
        else:
            conn.exec_driver_sql(self._insert_hashes(name, staging, "1"))

    def keep_rows(self, conn: sa.Connection, dialect: Any, rows: list[tuple[Any, bool]]) -> None:
        """Rows applied one by one by server-side isolation (``(encoded row, inserted)``, the good ones only):
        staged in a table of their own and hashed like a batch (insert_only: only inserted rows are new)."""
        if self.vfy is None or not rows:
            return
        if self._rows_table is None:
            self._rows_table = dialect.create_staging(conn, f"dm_vfr_{self.token}", self.dest.table, self.dest.columns)
        groups = [(True, [r for r, _ in rows])] if self.pending is None else \
            [(True, [r for r, new in rows if new]), (False, [r for r, new in rows if not new])]
        for fresh, part in groups:
            if part:
                dialect.clear_staging(conn, self._rows_table)
                dialect.bulk_insert(conn, self._rows_table, self.dest.columns, part)
                conn.exec_driver_sql(self._insert_hashes(self.prep.format_table(self.vfy), self._rows_table,
                                                         "1" if fresh else "0"))

    def _insert_hashes(self, into: str, staging: sa.TableClause, fresh: str) -> str:
        cols = [*self.dest.key, RH, FRESH]
        keys = "".join(f"s.{self._q(k)}, " for k in self.dest.key)
        return (f"INSERT INTO {into} ({', '.join(self._q(c) for c in cols)}) "
                f"SELECT {keys}{self.hash.of('s')}, {fresh} FROM {self.prep.format_table(staging)} s")

    # ------------------------------------------------------------------ before COMMIT
    def run(self, conn: sa.Connection, *, received: int, failed: int, extracted: int | None) -> dict:
        """The verification record; raises VerificationFailed (its ``verification``) on a mismatch."""
        started = time.monotonic()
        expected = received - failed
        out: dict[str, Any] = {"method": self.level, "mode": self.mode.value, "key": list(self.dest.key),
                               "rows_expected": expected, "rows_failed": failed, "problems": [], "keys": []}
        if extracted is not None and extracted != received:
            out["problems"].append(f"the loader received {received} rows but the extractor read {extracted}")
        if self.vfy is not None:
            self._checksum(conn, out, expected)
        else:
            self._counts(conn, out, expected)
        out["keys"] = out["keys"][:KEYS_LIMIT]
        out["outcome"] = "failed" if out["problems"] else "passed"
        out["seconds"] = round(time.monotonic() - started, 3)
        if out["problems"]:
            raise VerificationFailed(self.dest.table.fullname, out)
        return out

    def _counts(self, conn: sa.Connection, out: dict, expected: int) -> None:
        problems = out["problems"]
        if self.written is not None:  # keyed insert_only, upsert, sync_delete
            written = self._count(conn, self.prep.format_table(self.written))
            out["keys_written"] = written
            if written != expected:
                problems.append(f"{written} distinct keys were written, expected {expected}")
            self._absent(conn, out, self.written, "missing")
        elif self.before is not None:  # keyless insert_only
            rows = self._count(conn, self.target)
            out.update(destination_rows_before=self.before, destination_rows=rows)
            if rows - self.before != expected:
                problems.append(f"the destination grew by {rows - self.before} rows, expected {expected}")
        else:  # truncate_load
            self._total(conn, out, expected)
        if self.mode is Mode.sync_delete:
            self._extra(conn, out, self._source_keys())

    def _checksum(self, conn: sa.Connection, out: dict, expected: int) -> None:
        problems, vfy = out["problems"], self.prep.format_table(self.vfy)
        if not self.dest.key:
            rows, rsum = conn.exec_driver_sql(f"SELECT COUNT(*), {self.hash.hash_sum(RH)} FROM {vfy}").one()
            out["rows_hashed"] = int(rows)
            if int(rows) != expected:
                problems.append(f"{rows} rows were hashed while written, expected {expected}")
            if self.mode is Mode.truncate_load:
                dest_sum = self._total(conn, out, int(rows), with_sum=True)
                if dest_sum != sum_value(rsum):
                    problems.append("the whole-table checksum of the destination differs from the rows written")
            else:
                self._counts(conn, out, expected)
                out["note"] = "no key and rows kept from before: only the row count can be checked"
            return
        join, changed = self._join()
        n, missing, different = conn.exec_driver_sql(
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {self._absent_d()} THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN {changed} THEN 1 ELSE 0 END), 0) FROM {join}").one()
        out.update(rows_hashed=int(n), missing=int(missing), different=int(different))
        if int(n) != expected:
            problems.append(f"{n} rows were hashed while written, expected {expected}")
        if missing or different:
            problems.append(f"{missing} written keys are missing and {different} rows differ from what was written")
            keys = ", ".join(f"v.{self._q(k)}" for k in self.dest.key)
            sql = (f"SELECT {keys}, CASE WHEN {self._absent_d()} THEN 'missing' ELSE 'different' END "
                   f"FROM {join} WHERE {self._absent_d()} OR {changed} LIMIT {KEYS_LIMIT}")
            out["keys"] += [self._named(r[:-1], r[-1]) for r in conn.exec_driver_sql(sql)]
        if self.mode is Mode.truncate_load:
            self._total(conn, out, expected)
            self._extra(conn, out, [self.vfy], counted=False)
        elif self.mode is Mode.sync_delete:
            self._extra(conn, out, self._source_keys())

    def _join(self) -> tuple[str, str]:
        """``vfy v LEFT JOIN destination d`` on the key, and the condition of a differing row."""
        match = " AND ".join(f"d.{self._q(k)} = v.{self._q(k)}" for k in self.dest.key)
        join = f"{self.prep.format_table(self.vfy)} v LEFT JOIN {self.target} d ON {match}"
        matched = f"d.{self._q(self.dest.key[0])} IS NOT NULL"
        return join, f"({matched} AND v.{FRESH} = 1 AND {self.hash.of('d')} <> v.{RH})"

    def _absent_d(self) -> str:
        """No destination row has the written key (a key with a NULL column matches none: not counted)."""
        present = " AND ".join(f"v.{self._q(k)} IS NOT NULL" for k in self.dest.key)
        return f"(d.{self._q(self.dest.key[0])} IS NULL AND {present})"

    def _total(self, conn: sa.Connection, out: dict, expected: int, *, with_sum: bool = False) -> int | None:
        """truncate_load: the destination holds exactly the rows written (and its checksum when asked)."""
        agg = f", {self.hash.hash_sum(self.hash.of('d'))}" if with_sum else ""
        row = conn.exec_driver_sql(f"SELECT COUNT(*){agg} FROM {self.target} d").one()
        out["destination_rows"] = int(row[0])
        if int(row[0]) != expected:
            out["problems"].append(f"the destination holds {row[0]} rows, expected {expected}")
        return sum_value(row[1]) if with_sum else None

    def _absent(self, conn: sa.Connection, out: dict, keys: sa.TableClause, problem: str) -> None:
        """Keys of ``keys`` the destination lacks: counted, and named up to the limit."""
        key = self.dest.key
        gone = sa.and_(~sa.exists().where(key_match(self.dest.table, keys, key)),
                       *[keys.c[k].isnot(None) for k in key])  # a NULL in a key matches nothing: not expected to
        count = conn.execute(sa.select(sa.func.count()).select_from(keys).where(gone)).scalar_one()
        out[problem] = int(count)
        if count:
            out["problems"].append(f"{count} written keys are not in the destination")
            rows = conn.execute(sa.select(*[keys.c[k] for k in key]).where(gone).limit(KEYS_LIMIT))
            out["keys"] += [self._named(r, problem) for r in rows]

    def _source_keys(self) -> list[sa.TableClause]:
        """sync_delete's source set: the keys written and ``seen`` (keys of rows that failed)."""
        return [t for t in (self.written, self.seen) if t is not None]

    def _extra(self, conn: sa.Connection, out: dict, sources: list[sa.TableClause], *, counted: bool = True) -> None:
        """Destination rows whose key is in none of ``sources`` (tables of source keys or hashed rows)."""
        if not sources or not self.dest.key:
            return
        key, target = self.dest.key, self.dest.table
        extra = sa.and_(*[~sa.exists().where(key_match(source, target, key)) for source in sources])
        count = conn.execute(sa.select(sa.func.count()).select_from(target).where(extra)).scalar_one()
        out["extra"] = int(count)
        if count:
            if counted:
                out["problems"].append(f"{count} destination rows have a key that is not in the source")
            rows = conn.execute(sa.select(*[target.c[k] for k in key]).where(extra).limit(KEYS_LIMIT))
            out["keys"] += [self._named(r, "extra") for r in rows]

    def _named(self, values: Any, problem: str) -> dict:
        return {"key": {k: json_safe(v) for k, v in zip(self.dest.key, values)}, "problem": problem}

    def _count(self, conn: sa.Connection, table: str) -> int:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())

    def _q(self, name: str) -> str:
        return self.prep.quote(name)


def skipped() -> dict:
    """The verification record of ``verify: none``."""
    return {"method": "none", "outcome": "skipped", "problems": [], "keys": [], "seconds": 0.0}
