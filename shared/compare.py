"""Compare a job's final result with its destination table, inside the databases.

Both sides are read through :class:`~shared.extract.readside.ReadSide` (read-only
sessions; the source plans exactly as an execution). Each row gets two MD5s computed by
its database: of its key's canonical text (``kh``) and of its compared columns' canonical
text (``rh``, see :mod:`shared.dialects.checksum`). The key hash places a row in a
bucket (its first hex digits), a range of the key-hash space that means the same on
every engine (key ranges in collation order would not: MariaDB and PostgreSQL sort text
differently). First one query per side returns the row count and the exact sum of the
60-bit row hashes of the whole result; equal tables end there, one scan per side. Otherwise
one query per side returns count and sum for each of 4,096 buckets; buckets whose sums
differ are split 4,096-fold again (only those rows are read), until a bucket holds at most
``LEAF_ROWS`` rows on each side; then each side's ``(key text, row hash)`` pairs of those
buckets are fetched and compared in Python, and for up to ``limit`` differing keys the
rows themselves (their canonical texts name the differing columns).

Without a key (no key_columns and no primary key on the destination) only the counts and
one whole-table checksum are compared.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.dialects.checksum import ChecksumSQL, canonical_kind, single_precision_floats, sum_value
from shared.dialects.loading import kind_of
from shared.errors import ConfigError, DestinationError
from shared.extract.preview import json_safe
from shared.extract.readside import ReadSide
from shared.jobspec import DestinationSpec, Mode, StepSpec
from shared.load.destination import inspect_destination, reflect_table

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
BUCKET_DIGITS = 3  # 4,096 buckets per level
LEAF_ROWS = 5_000
IN_CHUNK = 500
_HEX = re.compile(r"^[0-9a-f]+$")
T = TypeVar("T")
U = TypeVar("U")


class _Side:
    """One side's SQL over its derived table: compared columns, their kinds, the key."""

    def __init__(self, read: ReadSide, names: list[str], kinds: list[str], key: list[int]) -> None:
        self.read, self.names, self.kinds, self.key = read, names, kinds, key
        self.cs = ChecksumSQL(read.engine_name)
        cols = [f"dm_src.{read.quote(n)}" for n in names]
        self.base = f"(\n{read.sql}\n) dm_src"
        self.row_text = self.cs.row_text(cols, kinds)
        self.key_text = self.cs.row_text([cols[i] for i in key], [kinds[i] for i in key])
        self.values = [self.cs.value(c, k) for c, k in zip(cols, kinds)]
        self.raw = cols

    def hashed(self, *extra: str) -> str:
        more = "".join(f", {e}" for e in extra)
        return (f"SELECT {self.cs.md5(self.key_text)} AS dm_kh, {self.cs.md5(self.row_text)} AS dm_rh{more} "
                f"FROM {self.base}")

    def buckets(self, digits: int, parents: list[str] | None) -> dict[str, tuple[int, int]]:
        b = self.cs.prefix("dm_kh", digits)
        out: dict[str, tuple[int, int]] = {}
        for where in _in_clauses(self.cs.prefix("dm_kh", digits - BUCKET_DIGITS), parents):
            sql = (f"SELECT {b}, COUNT(*), {self.cs.hash_sum('dm_rh')} FROM ({self.hashed()}) dm_h{where} "
                   f"GROUP BY {b}")
            out.update({str(r[0]): (int(r[1]), sum_value(r[2])) for r in self.read.query(sql)})
        return out

    def pairs(self, digits: int, buckets: list[str] | None) -> dict[str, tuple[str, list[str]]]:
        """key text → (key hash, sorted row hashes) for the rows of ``buckets`` (None: all rows)."""
        out: dict[str, tuple[str, list[str]]] = {}
        for where in _in_clauses(self.cs.prefix("dm_kh", digits), buckets):
            sql = f"SELECT dm_kt, dm_kh, dm_rh FROM ({self.hashed(f'{self.key_text} AS dm_kt')}) dm_h{where}"
            for kt, kh, rh in self.read.query(sql):
                out.setdefault(str(kt), (str(kh), []))[1].append(str(rh))
        for _, hashes in out.values():
            hashes.sort()
        return out

    def rows(self, key_hashes: list[str]) -> dict[str, tuple[list[Any], list[Any]]]:
        """key hash → (canonical texts, raw values) of the rows with those keys (first of duplicates)."""
        out: dict[str, tuple[list[Any], list[Any]]] = {}
        n = len(self.names)
        for where in _in_clauses(self.cs.md5(self.key_text), key_hashes):
            sql = f"SELECT {self.cs.md5(self.key_text)}, {', '.join(self.values + self.raw)} FROM {self.base}{where}"
            for r in self.read.query(sql):
                out.setdefault(str(r[0]), (list(r[1:1 + n]), list(r[1 + n:])))
        return out

    def total(self) -> tuple[int, int]:
        r = self.read.query(f"SELECT COUNT(*), {self.cs.hash_sum(self.cs.md5(self.row_text))} FROM {self.base}")[0]
        return int(r[0]), sum_value(r[1])


def _in_clauses(expr: str, values: list[str] | None) -> list[str]:
    """`` WHERE expr IN ('…')`` per chunk of hex values (``['']`` for no filter, ``[]`` for none)."""
    if values is None:
        return [""]
    for v in values:
        if not _HEX.match(v):
            raise ValueError(f"not a hex digest: {v!r}")
    return [f" WHERE {expr} IN ({', '.join(repr(v) for v in values[i:i + IN_CHUNK])})"
            for i in range(0, len(values), IN_CHUNK)]


def compare_job(steps: list[StepSpec], destination: DestinationSpec, engines: Mapping[int, sa.Engine], *,
                limit: int = DEFAULT_LIMIT, timeout_s: float | None = None) -> dict:
    """The comparison report (see the module docstring); writes nothing.

    Raises ConfigError (destination missing, SQL Server), SourceError, ConnectionLost, TimedOut.
    """
    started = time.monotonic()
    dest_engine = engines[destination.project_id]
    try:
        with dest_engine.connect() as conn:
            target = reflect_table(conn, destination.table)
    except sa.exc.SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise DestinationError(f"destination (project {destination.project_id}) could not be read: {reason}") from exc
    if target is None:
        raise ConfigError(f"destination table {destination.table} does not exist")
    with ReadSide(steps, engines, timeout_s=timeout_s) as src_read:
        src_cols = src_read.open()
        by_lower = {c.name.lower(): c.name for c in target.columns}
        compared = [c for c in src_cols if c.name.lower() in by_lower]
        if not compared:
            raise ConfigError(f"no column of the job's result is in destination table {destination.table}")
        with dest_engine.connect() as conn:
            dest, checks = inspect_destination(conn, table=destination.table, columns=compared,
                                               mode=Mode.insert_only, key_columns=destination.key_columns)
        key = dest.key if dest else []
        key_check = next((c["message"] for c in checks if c["check"] == "key" and not c["ok"]), "")
        dest_names = [by_lower[c.name.lower()] for c in compared]
        quote = get_dialect(dest_engine).quote_table(dest_engine.dialect, f"{target.schema}.{target.name}"
                                                     if target.schema else target.name)
        prep = dest_engine.dialect.identifier_preparer
        dest_step = StepSpec(name="destination", project_id=destination.project_id,
                             sql=f"SELECT {', '.join(prep.quote(n) for n in dest_names)} FROM {quote}")
        with ReadSide([dest_step], engines, timeout_s=timeout_s) as dst_read:
            dst_read.open()
            kinds = _kinds(src_read.engine_name, dst_read.engine_name,
                           [canonical_kind(c.type) for c in compared],
                           [canonical_kind(kind_of(target.c[n].type)) for n in dest_names])
            single = [a or b for a, b in zip(single_precision_floats(src_read.engine_name, compared),
                                             single_precision_floats(dst_read.engine_name,
                                                                     [target.c[n].type for n in dest_names]))]
            kinds = tuple([("float_exact" if one and k == "float" else k) for k, one in zip(side, single)]
                          for side in kinds)
            key_idx = [dest_names.index(k) for k in key]
            src = _Side(src_read, [c.name for c in compared], kinds[0], key_idx)
            dst = _Side(dst_read, dest_names, kinds[1], key_idx)
            report = _diff(src, dst, limit=limit) if key else _totals(src, dst, why=key_check)
    notes = [report.pop("note", "")]
    extra = [n for n in (c.name for c in target.columns) if n not in dest_names]
    missing = [c.name for c in src_cols if c.name.lower() not in by_lower]
    if extra:
        notes.append(f"destination columns not in the result are not compared: {', '.join(extra)}")
    if missing:
        notes.append(f"result columns missing from the destination: {', '.join(missing)}")
    report.update(columns=dest_names, key=key, note="; ".join(n for n in notes if n) or None,
                  seconds=round(time.monotonic() - started, 3))
    return report


def _kinds(src_engine: str, dst_engine: str, src: list[str], dst: list[str]) -> tuple[list[str], list[str]]:
    """Per side, the kind each column is rendered as. SQLite values carry no declared type, so a
    SQLite side takes the other side's kind (its canonicaliser falls back to the text)."""
    if src_engine == "sqlite" and dst_engine != "sqlite":
        src = list(dst)
    elif dst_engine == "sqlite" and src_engine != "sqlite":
        dst = list(src)
    return src, dst


def _both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """Run one query on each side at the same time (their sessions are separate connections)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dm-compare") as pool:
        later = pool.submit(second)
        try:
            done = first()
        finally:
            result = later.result()
    return done, result


def _totals(src: _Side, dst: _Side, *, why: str) -> dict:
    (sn, ss), (dn, ds) = _both(src.total, dst.total)
    return {"method": "count+checksum", "equal": (sn, ss) == (dn, ds), "source_rows": sn, "destination_rows": dn,
            "only_in_source": None, "only_in_destination": None, "different": None, "samples": [],
            "note": f"no key ({why or 'no key_columns and no primary key on the destination'}): only the row "
                    "counts and a whole-table checksum were compared; differing rows cannot be named"}


def _diff(src: _Side, dst: _Side, *, limit: int) -> dict:
    digits, parents = BUCKET_DIGITS, None
    only_src: list[tuple[str, str]] = []
    only_dst: list[tuple[str, str]] = []
    changed: list[tuple[str, str]] = []
    (sn, ss), (dn, ds) = _both(src.total, dst.total)  # equal tables (the usual case) end here
    if (sn, ss) == (dn, ds):
        parents = []
    while parents is None or parents:
        sb, db = _both(lambda: src.buckets(digits, parents), lambda: dst.buckets(digits, parents))
        differing = sorted(b for b in set(sb) | set(db) if sb.get(b) != db.get(b))
        size = {b: max(sb.get(b, (0, 0))[0], db.get(b, (0, 0))[0]) for b in differing}
        leaves = [b for b in differing if size[b] <= LEAF_ROWS or digits + BUCKET_DIGITS > 32]
        parents = [b for b in differing if b not in leaves]
        if leaves:
            sp, dp = _both(lambda: src.pairs(digits, leaves), lambda: dst.pairs(digits, leaves))
            only_src += sorted((kt, sp[kt][0]) for kt in sp.keys() - dp.keys())
            only_dst += sorted((kt, dp[kt][0]) for kt in dp.keys() - sp.keys())
            changed += sorted((kt, sp[kt][0]) for kt in sp.keys() & dp.keys() if sp[kt][1] != dp[kt][1])
        digits += BUCKET_DIGITS
    report = {"method": "checksum", "source_rows": sn, "destination_rows": dn,
              "only_in_source": len(only_src), "only_in_destination": len(only_dst), "different": len(changed),
              "equal": not (only_src or only_dst or changed)}
    report["samples"] = _samples(src, dst, [("source", k) for k in only_src] + [("destination", k) for k in only_dst]
                                 + [("both", k) for k in changed], limit=limit)
    return report


def _samples(src: _Side, dst: _Side, wanted: list[tuple[str, tuple[str, str]]], *, limit: int) -> list[dict]:
    wanted = wanted[:limit]
    if not wanted:
        return []
    hashes = [kh for _, (_, kh) in wanted]
    srows = src.rows([kh for side, (_, kh) in wanted if side != "destination"])
    drows = dst.rows([kh for side, (_, kh) in wanted if side != "source"])
    out = []
    for kh in hashes:
        s, d = srows.get(kh), drows.get(kh)
        present = s or d
        if present is None:
            continue
        raw = present[1]
        key = {src.names[i] if s else dst.names[i]: json_safe(raw[i]) for i in src.key}
        columns = [dst.names[i] for i in range(len(dst.names)) if s and d and s[0][i] != d[0][i]]
        out.append({"key": key, "columns": columns,
                    "source": dict(zip(src.names, map(json_safe, s[1]))) if s else None,
                    "destination": dict(zip(dst.names, map(json_safe, d[1]))) if d else None})
    return out
