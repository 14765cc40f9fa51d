"""The extraction of one job: plan the steps, stream the final result in batches."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from shared.dialects import get_dialect
from shared.dialects.sqlrules import rules_for
from shared.errors import ConfigError, SourceError
from shared.extract.planner import SessionPlan, depends_on, plan, reference_problems, step_label
from shared.extract.session import Context, Session
from shared.extract.tokenizer import first_word, into_target, statement_count
from shared.jobspec import StepSpec
from shared.privileges import SourcePrivileges, strict_sources_default
from shared.types import Column

DEFAULT_BATCH_ROWS = 10_000
QUERY_STARTS = frozenset({"select", "with", "values", "table"})


def flavors_of(steps: list[StepSpec], engines: Mapping[int, sa.Engine]) -> dict[int, str]:
    """Project id → tokenizer flavor, for the projects that have an engine."""
    return {s.project_id: get_dialect(engines[s.project_id].dialect.name).sql_flavor
            for s in steps if s.project_id in engines}


def step_problems(steps: list[StepSpec], engines: Mapping[int, sa.Engine]) -> list[tuple[int, str]]:
    """``(step, message)`` for what stops a job before any database is asked.

    Unknown projects, bad references, more than one statement, a statement that is not a query.
    """
    flavors = flavors_of(steps, engines)
    problems = [(k, f"{step_label(steps, k)}: project {s.project_id} is not available")
                for k, s in enumerate(steps, start=1) if s.project_id not in engines]
    problems += reference_problems(steps, flavors)
    for k, s in enumerate(steps, start=1):
        flavor = flavors.get(s.project_id, "generic")
        count = statement_count(s.sql, flavor=flavor)
        if count != 1:
            problems.append((k, f"{step_label(steps, k)}: holds {count} statements; a step is exactly one query"))
            continue
        word = first_word(s.sql, flavor=flavor)
        if word not in QUERY_STARTS and not word.startswith("("):
            problems.append((k, f"{step_label(steps, k)}: starts with {word.upper()!r}; a step must be a query "
                                "(SELECT, WITH, VALUES, TABLE) and may not write"))
        elif rules_for(flavor).select_into_writes and (target := into_target(s.sql, flavor=flavor)):
            problems.append((k, f"{step_label(steps, k)}: SELECT … INTO {target} writes outside the result; "
                                "a step may only return rows"))
    return problems


def check_steps(steps: list[StepSpec], engines: Mapping[int, sa.Engine]) -> list[str]:
    """Messages (naming the step) for what :func:`step_problems` finds."""
    return [message for _, message in step_problems(steps, engines)]


class Extraction:
    """Runs a job's steps and streams the last step's result.

    ``open()`` runs the plan (CTE pushdown on one project, temporary tables across
    projects) and starts the final statement on a server-side cursor; ``batches()``
    yields ``batch_rows`` rows at a time; ``cancel()`` may be called from any thread;
    ``close()`` ends every session. Steps the final step does not reference (even
    transitively) are not run: they cannot change the result. ``zero_dates`` (project id →
    ``"keep"`` or ``"null"``): MariaDB/MySQL zero and invalid dates of that project's steps kept
    as their text (the default) or read as NULL, counted in :attr:`warnings`. Every session first asks
    what its role may do (:attr:`privileges`); ``strict_sources`` (default:
    ``DM_STRICT_SOURCES``) refuses a role that can write, reach server files or signal
    other sessions.
    """

    def __init__(self, steps: list[StepSpec], engines: Mapping[int, sa.Engine], *, batch_rows: int = DEFAULT_BATCH_ROWS,
                 statement_timeout_s: float | None = None, probe: bool = False,
                 zero_dates: Mapping[int, str] | None = None, strict_sources: bool | None = None,
                 incremental: Any = None, watermark: tuple[str | None, Any] | None = None) -> None:
        if not steps:
            raise ConfigError("a job needs at least one step")
        if batch_rows < 1:
            raise ConfigError("batch_rows must be at least 1")
        self.steps = list(steps)
        self.rows_read = 0
        strict = strict_sources_default() if strict_sources is None else strict_sources
        self._ctx = Context(self.steps, engines, batch_rows, statement_timeout_s, probe=probe,
                            zero_dates=dict(zero_dates or {}), strict=strict)
        self._session: Session | None = None
        self.plan: SessionPlan | None = None
        self._incremental = incremental  # shared.extract.watermark.IncrementalRead: @watermark and its bound
        self._ctx.watermark = watermark  # (kind, value) for @watermark in a preview or validation

    def open(self, bulk_format: str | None = None,
             binary_into: dict[str, tuple[int, int] | None] | None = None) -> list[Column]:
        """Run steps 1..K-1 as planned and start step K; returns the final columns.

        ``bulk_format``: stream the result as that bulk text when the engine can
        (:attr:`bulk` tells; then use :meth:`bulk_batches`); ``binary_into``: the destination's
        column types (lower-case name → PostgreSQL OID, typmod), to pass the result through in
        binary form where every column allows (:attr:`bulk_format` tells the format chosen).

        Raises SourceError (also for bad references or several statements), ConnectionLost,
        TimedOut or Cancelled, each naming the step.
        """
        flavors = flavors_of(self.steps, self._ctx.engines)
        needed = depends_on(self.steps, len(self.steps), flavors)
        problems = [m for k, m in step_problems(self.steps, self._ctx.engines) if k in needed]
        if problems:
            raise SourceError("; ".join(problems))
        self.plan = plan(self.steps, len(self.steps), flavors)
        incr = self._incremental
        if incr is not None:  # bound value, and the safe upper bound read before any snapshot
            self._ctx.watermark = (incr.kind, incr.bound_value() if incr.kind else None)
            if incr.kind and not self._ctx.probe:
                incr.observe(dict.fromkeys(self._ctx.engines[self.steps[k - 1].project_id] for k in sorted(needed)))
        self._session = Session(self.plan, self._ctx)
        try:
            columns = self._session.start(bulk_format, binary_into)
            if incr is not None and incr.kind and not self._ctx.probe:
                incr.opened(self._ctx.engines[self.plan.project_id], columns)
            return columns
        except BaseException:
            self.close()
            raise

    def batches(self) -> Iterator[list[tuple]]:
        """The final result in batches; memory does not grow with the number of rows.

        Raises SourceError, ConnectionLost, TimedOut or Cancelled.
        """
        if self._session is None:
            raise SourceError("Extraction.open() must be called before batches()")
        for batch in self._session.batches():
            self.rows_read += len(batch)
            yield batch

    @property
    def privileges(self) -> list[SourcePrivileges]:
        """What each source role the sessions ran as can do (one entry per project reached so far)."""
        with self._ctx.lock:
            return list(self._ctx.privileges.values())

    @property
    def bulk(self) -> bool:
        """True when :meth:`open` started a bulk-text export."""
        return self._session is not None and self._session.bulk_sql is not None

    @property
    def bulk_format(self) -> str | None:
        """The format of :meth:`bulk_batches`' payloads (None: rows)."""
        return self._session.bulk_format if self.bulk else None  # type: ignore[union-attr]

    def bulk_batches(self, chunk_bytes: int, max_rows: int | None = None) -> Iterator[tuple[bytes, int]]:
        """The final result as bulk-text chunks ``(payload, rows)``: at most ``max_rows`` rows
        (default ``batch_rows``) and about ``chunk_bytes`` each; memory stays flat.

        Raises SourceError, ConnectionLost, TimedOut or Cancelled.
        """
        if self._session is None or self._session.bulk_sql is None:
            raise SourceError("Extraction.open(bulk_format) did not start a bulk export")
        for payload, rows in self._session.bulk_batches(chunk_bytes, max_rows or self._ctx.batch_rows):
            self.rows_read += rows
            yield payload, rows

    @property
    def warnings(self) -> dict[str, int]:
        """Counts by kind of what was changed on purpose (``zero_dates`` mapped to NULL)."""
        return dict(self._ctx.warnings)

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel the running statement from any thread; ``open``/``batches`` then raise Cancelled."""
        self._ctx.cancel(reason)

    def close(self) -> None:
        """Close every session; temporary tables vanish with them. Safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> "Extraction":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
