"""One incremental read: the bound ``@watermark`` value, the safe upper bound, the rows kept.

:class:`IncrementalRead` is what the extractor holds for an incremental job:

1. :meth:`resolve_kind` (first run only) describes the final result with ``@watermark`` as NULL
   to learn the column's kind;
2. :meth:`observe` runs inside :meth:`shared.extract.Extraction.open`, before any session takes
   its snapshot: the source's clock and oldest open transaction (:mod:`shared.dialects.watermark`),
   which give the new watermark W (:func:`shared.incremental.next_watermark`); :meth:`opened`
   runs after the snapshots (a server time for the integer rule);
3. :meth:`keep` filters each batch: rows above W wait for the next run, NULLs are kept
   (``include_nulls``) or counted;
4. :meth:`result` is what travels to the loader (EndOfBatches) and into ``datamig_state``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.dialects import watermark as engine_watermark
from shared.errors import ConfigError, SourceError
from shared.incremental import (HIDDEN_WARNING, NULLS_WARNING, IncrementalSpec, Watermark, as_comparable,
                                column_kind, format_value, next_watermark, remember_seen, start_value)
from shared.types import Column


class IncrementalRead:
    """The watermark side of one execution (not thread-safe; one per extraction)."""

    def __init__(self, spec: IncrementalSpec, stored: Watermark) -> None:
        self.spec, self.stored = spec, stored
        self.kind: str | None = stored.kind
        self.new: Any = None
        self.warnings: dict[str, int] = {}
        self._clock: datetime | None = None
        self._seen_at: datetime | None = None
        self._index = -1
        self._largest: Any = None

    # ------------------------------------------------------------------ before the read
    def resolve_kind(self, describe: Callable[["IncrementalRead"], list[Column]]) -> str:
        """The column's kind; ``describe(self)`` returns the final columns (``@watermark`` as NULL
        while the kind is unknown). Raises SourceError when the column is missing or unusable."""
        if self.kind is None:
            self.kind = self._kind_of(describe(self))
        return self.kind

    def _kind_of(self, columns: list[Column]) -> str:
        column = self._column(columns)
        kind = column_kind(column.type, column.scale)
        if kind is None:
            raise SourceError(f"incremental.column {self.spec.column!r} is a {column.type} column; the watermark "
                              "needs a timestamp, date or integer column")
        return kind

    def _column(self, columns: list[Column]) -> Column:
        for c in columns:
            if c.name.lower() == self.spec.column.lower():
                return c
        raise SourceError(f"incremental.column {self.spec.column!r} is not a column of the final result "
                          f"(columns: {', '.join(c.name for c in columns)})")

    def bound_value(self) -> Any:
        """What ``@watermark`` is bound to (None: the beginning). Raises ConfigError for a bad value."""
        assert self.kind is not None
        try:
            return start_value(self.stored.value, self.spec, self.kind)
        except ValueError as exc:
            raise ConfigError(f"the stored watermark does not fit column {self.spec.column!r}: {exc}") from None

    def observe(self, engines: Iterable[sa.Engine]) -> None:
        """Just before the snapshots: the bound inputs of every source the read uses."""
        horizons = []
        for engine in engines:
            try:
                with engine.connect() as conn:
                    horizons.append(engine_watermark.horizon(conn))
            except sa.exc.DBAPIError as exc:
                error = SourceError(f"reading the source's open transactions for the watermark failed: "
                                    f"{' '.join(str(exc.orig or exc).split())}")
                error.transient = get_dialect(engine.dialect.name).is_transient(exc)
                raise error from exc
        inputs = [h.inputs(times=self.kind != "int") for h in horizons]
        self._clock = min(c for c, _ in inputs)
        oldest = min((o for _, o in inputs if o is not None), default=None)
        if not all(h.complete for h in horizons):
            self.warnings[HIDDEN_WARNING] = 1  # other sessions' transactions are not visible: lag decides
            lag = self.spec.lag_for(self.kind or "timestamp")
            if isinstance(lag, timedelta):
                oldest = min(oldest or self._clock, self._clock - lag)
        self.new = next_watermark(self.stored, kind=self.kind or "timestamp", clock=self._clock, oldest=oldest)

    def opened(self, engine: sa.Engine, columns: list[Column]) -> None:
        """After the snapshots: a server time later than them; the column's position."""
        self._index = columns.index(self._column(columns))
        with engine.connect() as conn:
            self._seen_at = engine_watermark.clock(conn)

    # ------------------------------------------------------------------ during the read
    def keep(self, rows: list[tuple]) -> list[tuple]:
        """The rows this run writes: value ≤ W, NULLs when included (else counted)."""
        kept, i, kind, new = [], self._index, self.kind or "timestamp", self.new
        for row in rows:
            value = row[i]
            if value is None:
                if self.spec.include_nulls:
                    kept.append(row)
                else:
                    self.warnings[NULLS_WARNING] = self.warnings.get(NULLS_WARNING, 0) + 1
                continue
            value = as_comparable(value, kind)
            try:
                if kind == "int" and (self._largest is None or value > self._largest):
                    self._largest = value
                if new is not None and value <= new:
                    kept.append(row)
            except TypeError:  # e.g. a MariaDB zero date kept as text: older than any watermark
                kept.append(row)
        return kept

    # ------------------------------------------------------------------ after the read
    def result(self) -> dict:
        """``{from, to, kind, seen, lag}`` for the loader, ``datamig_state`` and history."""
        seen = self.stored.seen
        if self.kind == "int" and self._seen_at is not None:
            seen = remember_seen(self.stored, seen_at=self._seen_at, largest=self._largest, new=self.new)
        return {"from": self.stored.value, "to": format_value(self.new), "kind": self.kind, "seen": seen,
                "lag": bool(self.spec.lag)}


def incremental_read(job: Any, stored: Mapping[str, Any] | None) -> IncrementalRead | None:
    """The job's (a JobSpec or its dict) incremental read, or None for a job without ``incremental``."""
    raw = job.get("incremental") if isinstance(job, Mapping) else getattr(job, "incremental", None)
    if not raw:
        return None
    spec = raw if isinstance(raw, IncrementalSpec) else IncrementalSpec.model_validate(raw)
    return IncrementalRead(spec, Watermark.from_dict(dict(stored or {})))


def describe_final(steps: list, engines: Mapping[int, sa.Engine], *, timeout_s: float) -> list[Column]:
    """The final result's columns, ``@watermark`` as NULL (nothing is read)."""
    from shared.extract.runner import Extraction

    with Extraction(steps, engines, batch_rows=1, statement_timeout_s=timeout_s, probe=True,
                    watermark=(None, None)) as ext:
        return ext.open()
