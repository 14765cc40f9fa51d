"""A job's steps followed by its transform, with the interface of an Extraction.

``open()`` runs the steps the transform reads (each as its own
:class:`~shared.extract.runner.Extraction`, planned exactly as without a transform),
hands their rows to DuckDB as Arrow batches and binds the transform (its columns are the
result's); ``batches()`` streams the transform's rows. The bulk-text fast path is never
taken: rows leave DuckDB as Python values. A source error names its step, a DuckDB error
names the transform.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import duckdb
import sqlalchemy as sa

from shared.errors import Cancelled, DatamigError, SourceError, TimedOut
from shared.extract.runner import Extraction
from shared.jobspec import StepSpec
from shared.privileges import SourcePrivileges
from shared.transform.arrowio import column_of, final_select, reader, rows_of, settle_decimals, view_select
from shared.transform.engine import Engine, TransformLimits
from shared.transform.plan import (RELATION, TransformError, engine_sql, plan_transform, transform_problems,
                                   user_words)
from shared.types import Column

DEFAULT_BATCH_ROWS = 10_000


class Transformation:
    """Runs the steps a transform reads, then the transform, on an embedded DuckDB."""

    def __init__(self, steps: list[StepSpec], transform: str, engines: Mapping[int, sa.Engine], *,
                 batch_rows: int = DEFAULT_BATCH_ROWS, limits: TransformLimits | None = None,
                 **extraction_options: Any) -> None:
        self.steps, self.transform, self.engines = list(steps), transform, engines
        self.batch_rows = batch_rows
        self.limits = limits or TransformLimits.from_env()
        self.options = extraction_options  # statement_timeout_s, probe, zero_dates, strict_sources
        self.rows_read = 0
        self.columns: list[Column] = []
        self._extractions: list[Extraction] = []
        self._engine: Engine | None = None
        self._reader: Any = None
        self._source_error: BaseException | None = None
        self._cancelled: str | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._privileges: dict[int, SourcePrivileges] = {}
        self._warnings: dict[str, int] = {}

    bulk = False  # the fast bulk-text path is bypassed

    def open(self, bulk_format: str | None = None) -> list[Column]:
        """Run the referenced steps and bind the transform; returns its columns (``bulk_format`` ignored).

        Raises TransformError (the transform's SQL, references or limits), the steps' SourceError,
        ConnectionLost, TimedOut or Cancelled.
        """
        problems = transform_problems(self.transform, self.steps)
        if problems:
            raise TransformError("; ".join(problems), labelled=True)
        plan = plan_transform(self.transform, self.steps)
        timeout_s = self.options.get("statement_timeout_s")
        if timeout_s:  # the sources have their statement timeout; DuckDB's work is bounded by this timer
            self._timer = threading.Timer(timeout_s, self.cancel, args=("timeout",))
            self._timer.daemon = True
            self._timer.start()
        try:
            self._engine = Engine(self.limits)
            for n in plan.materialised:
                self._materialise(n)
            if plan.streamed is not None:
                self._register(plan.streamed, table=False)
            self.columns = self._bind()
        except BaseException:
            self.close()
            raise
        return self.columns

    def _extraction(self, n: int) -> tuple[Extraction, list[Column]]:
        ext = Extraction(self.steps[:n], self.engines, batch_rows=self.batch_rows, **self.options)
        with self._lock:
            self._extractions.append(ext)
        self._check()
        columns = ext.open()
        for p in ext.privileges:
            self._privileges.setdefault(p.project_id, p)
        return ext, columns

    def _register(self, n: int, *, table: bool) -> None:
        """``dm_resultN`` in DuckDB: a view over the step's stream, or (``table``) a table loaded from it."""
        assert self._engine is not None
        ext, columns = self._extraction(n)
        raw = f"dm_raw{n}"
        batches = self._guarded(ext, capped=table)
        first = next(batches, [])  # the step already holds it: unconstrained decimals take their scale from it
        columns = settle_decimals(columns, first)
        self._engine.con.register(raw, reader(itertools.chain([first], batches), columns))
        what = "TABLE" if table else "VIEW"
        with self.guard():
            select = view_select(columns, raw, probe=bool(self.options.get("probe")))
            self._engine.con.execute(f'CREATE {what} "{RELATION.format(n=n)}" AS {select}')
        if table:
            self._engine.con.unregister(raw)
            self._finish(ext)

    def _materialise(self, n: int) -> None:
        self._register(n, table=True)

    def _finish(self, ext: Extraction) -> None:
        for kind, count in ext.warnings.items():
            self._warnings[kind] = self._warnings.get(kind, 0) + count
        ext.close()
        with self._lock:
            self._extractions.remove(ext)

    def _guarded(self, ext: Extraction, *, capped: bool) -> Iterator[list[tuple]]:
        """The step's batches; a failure is kept so that it surfaces as itself, not as DuckDB's wrapper.
        ``capped``: the result is being materialised, so the disk it takes counts against the cap."""
        try:
            for rows in ext.batches():
                self._check()
                if capped and self._engine is not None and self._engine.disk_used() > self._engine.cap_bytes:
                    raise self._over_cap("materialising the results it reads")
                self.rows_read += len(rows)
                yield rows
        except BaseException as exc:
            self._source_error = exc
            raise

    def _bind(self) -> list[Column]:
        assert self._engine is not None
        with self.guard():
            rel = self._engine.con.sql(engine_sql(self.transform))
            names, types = list(rel.columns), list(rel.types)
        seen: set[str] = set()
        for name in names:
            if name.lower() in seen:
                raise TransformError(f"the result has two columns named {name!r}; give each column a distinct alias")
            seen.add(name.lower())
        if not self.options.get("probe"):
            with self.guard():
                self._reader = rel.select(", ".join(final_select(names, types))).to_arrow_reader(self.batch_rows)
        return [column_of(n, t) for n, t in zip(names, types)]

    def batches(self) -> Iterator[list[tuple]]:
        """The transform's rows, at most ``batch_rows`` at a time. Raises as :meth:`open` does."""
        if self._reader is None:
            raise SourceError("Transformation.open() must be called before batches()")
        pending: list[tuple] = []
        while True:
            self._check()
            with self.guard():
                batch = self._next_batch()
            if batch is None:
                break
            pending += rows_of(batch, self.columns)
            while len(pending) >= self.batch_rows:
                out, pending = pending[: self.batch_rows], pending[self.batch_rows:]
                yield out
        if pending:
            yield pending
        for ext in list(self._extractions):
            self._finish(ext)

    def _next_batch(self) -> Any:
        try:
            return self._reader.read_next_batch()
        except StopIteration:
            return None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """DuckDB errors → TransformError naming the transform; a step's own error passes as it is."""
        try:
            yield
        except DatamigError:
            raise
        except duckdb.Error as exc:
            if self._source_error is not None and isinstance(self._source_error, DatamigError):
                raise self._source_error from None
            raise self._translate(exc) from exc

    def _translate(self, exc: duckdb.Error) -> DatamigError:
        if self._cancelled == "timeout":
            return TimedOut(f"{self._label()} ran past its time limit and was stopped")
        if self._cancelled or isinstance(exc, duckdb.InterruptException):
            return Cancelled(f"{self._label()} was cancelled")
        text = user_words(" ".join(str(exc).split("\n")[0].split()))
        if "max_temp_directory_size" in str(exc) or "failed to offload data block" in str(exc):
            return self._over_cap(f"spilling: {text}")
        if isinstance(exc, duckdb.OutOfMemoryException):
            return TransformError(f"needs more memory than DM_TRANSFORM_MEMORY_LIMIT={self.limits.memory_limit} "
                                  f"and could not spill: {text}")
        return TransformError(text)

    def _over_cap(self, doing: str) -> TransformError:
        return TransformError(f"needs more temporary disk than DM_TRANSFORM_MAX_TEMP_SIZE={self.limits.max_temp_size} "
                              f"allows ({doing}; stopped)")

    @staticmethod
    def _label() -> str:
        return "the transform"

    def _check(self) -> None:
        if self._cancelled == "timeout":
            raise TimedOut(f"{self._label()} ran past its time limit and was stopped")
        if self._cancelled:
            raise Cancelled(f"{self._label()} was cancelled")

    @property
    def privileges(self) -> list[SourcePrivileges]:
        with self._lock:
            for ext in self._extractions:
                for p in ext.privileges:
                    self._privileges.setdefault(p.project_id, p)
        return list(self._privileges.values())

    @property
    def warnings(self) -> dict[str, int]:
        out = dict(self._warnings)
        with self._lock:
            for ext in self._extractions:
                for kind, count in ext.warnings.items():
                    out[kind] = out.get(kind, 0) + count
        return out

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel from any thread: the running source statements and the DuckDB query."""
        self._cancelled = self._cancelled or reason
        with self._lock:
            extractions = list(self._extractions)
        for ext in extractions:
            ext.cancel(reason)
        if self._engine is not None:
            self._engine.interrupt()

    def close(self) -> None:
        """End every source session and the DuckDB connection (its spill files go too). Safe twice."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            extractions, self._extractions = self._extractions, []
        for ext in extractions:
            ext.close()
        self._reader = None
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def __enter__(self) -> "Transformation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def extraction_for(transform: str | None, steps: list[StepSpec], engines: Mapping[int, sa.Engine],
                   **options: Any) -> Extraction | Transformation:
    """What an execution streams: the last step's result, or the transform's (when the job has one)."""
    if transform is None or not transform.strip():
        return Extraction(steps, engines, **options)
    return Transformation(steps, transform, engines, **options)
