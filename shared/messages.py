"""Wire messages between services: frozen, typed, with encode/decode next to the models.

Every message carries a type ``t``, the wire version ``v``, a message id ``id`` and the
``execution_id`` for correlation; ``seq`` orders a sender's messages so that handlers
stay idempotent when a message repeats or arrives late. The job and its projects travel as
typed snapshots (:mod:`shared.snapshots`), decoded here once.

Versions: ``VERSION`` changes whenever a message's fields change meaning or shape. A
message of another version or of an unknown type raises :class:`DecodeError`, and the
receiving worker dead-letters it with that reason (it never guesses). A new *job* field
does not change the version: the whole JobSpec travels, and a worker that does not know
the field refuses the snapshot (DecodeError naming the field) instead of ignoring it.
Version history: 1 = loose dicts, ``run`` as the execution id; 2 = typed snapshots,
``execution_id``, the whole job in LoadRequest.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from pydantic import ValidationError

from shared import codec
from shared.errors import DecodeError
from shared.jobspec import DestinationSpec, JobSpec
from shared.snapshots import ProjectSnapshot, dump_job, dump_projects, load_job, load_projects
from shared.types import Column

VERSION = 2


@dataclass(frozen=True)
class _Msg:
    TYPE: ClassVar[str] = ""
    execution_id: int = 0

    def encode(self) -> bytes:
        body = self._body()
        body.update(t=self.TYPE, v=VERSION, id=uuid.uuid4().hex)
        return codec.encode(body)

    def _body(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: no copy of a batch's rows

    @classmethod
    def _parse(cls, body: dict[str, Any]) -> dict[str, Any]:
        """The constructor's arguments from a decoded body (typed snapshots built here)."""
        return body


@dataclass(frozen=True)
class RunRequest(_Msg):
    """Ask an extractor to run an execution: the whole job, and each project it uses (by id)
    with its password encrypted."""

    TYPE: ClassVar[str] = "run"
    job_id: int = 0
    attempt: int = 1
    job: JobSpec | None = None
    projects: Mapping[int, ProjectSnapshot] = field(default_factory=dict)
    deadline: float = 0.0  # epoch seconds
    batch_rows: int = 0
    execution_key: str = ""  # the execution's identity in the destination's datamig_state
    watermark: dict = field(default_factory=dict)  # incremental jobs: the stored {value, kind, seen}

    def project(self, project_id: int) -> ProjectSnapshot:
        """Raises DecodeError when the request does not carry that project."""
        try:
            return self.projects[project_id]
        except KeyError:
            raise DecodeError(f"run request without project {project_id}", b"") from None

    def _body(self) -> dict[str, Any]:
        return {**super()._body(), "job": dump_job(self.job) if self.job else None,
                "projects": dump_projects(self.projects)}

    @classmethod
    def _parse(cls, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "job": _typed("job", load_job, body.get("job")),
                "projects": _typed("projects", load_projects, body.get("projects") or {})}


@dataclass(frozen=True)
class LoadRequest(_Msg):
    """Ask a loader to own an execution and apply its batch queue to the destination."""

    TYPE: ClassVar[str] = "load"
    job_id: int = 0
    job: JobSpec | None = None
    batch_queue: str = ""
    columns: tuple[Column, ...] = ()
    project: ProjectSnapshot | None = None  # the destination's connection
    deadline: float = 0.0
    execution_key: str = ""  # as in RunRequest

    @property
    def destination(self) -> DestinationSpec:
        assert self.job is not None
        return self.job.destination

    @property
    def job_name(self) -> str:
        return self.job.name if self.job else ""

    def _body(self) -> dict[str, Any]:
        return {**super()._body(), "job": dump_job(self.job) if self.job else None,
                "columns": [c.to_dict() for c in self.columns],
                "project": self.project.model_dump() if self.project else None}

    @classmethod
    def _parse(cls, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "job": _typed("job", load_job, body.get("job")),
                "columns": tuple(Column.from_dict(c) for c in body.get("columns") or ()),
                "project": _typed("project", ProjectSnapshot.model_validate, body.get("project"))}


@dataclass(frozen=True)
class Batch(_Msg):
    """Rows of the final result, in order. ``first`` is the 1-based position of rows[0].

    Either ``rows`` (Python values, the general path) or, on the fast path, ``data``: ``count``
    rows as bulk text in format ``fmt`` (see shared.dialects.bulk).
    """

    TYPE: ClassVar[str] = "batch"
    seq: int = 0
    first: int = 1
    rows: list = field(default_factory=list)
    fmt: str = ""
    data: bytes = b""
    count: int = 0

    @property
    def size(self) -> int:
        """Rows in this batch, whichever form they travel in."""
        return self.count if self.fmt else len(self.rows)


@dataclass(frozen=True)
class EndOfBatches(_Msg):
    """The last message of a batch queue: the extraction finished (``ok``) or aborted."""

    TYPE: ClassVar[str] = "end"
    seq: int = 0
    rows_read: int = 0
    ok: bool = True
    error: dict = field(default_factory=dict)
    watermark: dict = field(default_factory=dict)  # incremental jobs: {from, to, kind, seen, lag}, committed with the rows


@dataclass(frozen=True)
class Event(_Msg):
    """Progress, heartbeat and final status, published to the events exchange.

    ``kind``: started | progress | heartbeat | extracted | finished, and ``queued`` (the API's
    wake-up call to the schedulers, :mod:`shared.wakeup`; not history). ``counts`` holds any of
    rows_read, rows_inserted, rows_updated, rows_skipped, rows_deleted, rows_failed, rows_staged.
    ``warnings`` counts what was done on purpose but deserves a look, by kind (cumulative
    per sending service, like ``counts``), e.g. ``{"zero_dates": 3, "duplicate_keys": 2}``.
    """

    TYPE: ClassVar[str] = "event"
    job_id: int = 0
    kind: str = "progress"
    service: str = ""
    worker: str = ""
    seq: int = 0
    ts: float = field(default_factory=time.time)
    status: str = ""
    counts: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)
    error: dict = field(default_factory=dict)
    failed_rows: list = field(default_factory=list)
    report: list = field(default_factory=list)
    phase: str = ""  # shared.phases.PHASES: what the execution is doing now ("" = unchanged)
    estimate: dict = field(default_factory=dict)  # {"rows", "source"}: the planner's estimate of the source
    verification: dict = field(default_factory=dict)  # finished: the loader's check (shared.load.verify)
    watermark: dict = field(default_factory=dict)  # finished + committed: the watermark the destination holds


@dataclass(frozen=True)
class Cancel(_Msg):
    """Ask every worker to stop an execution (status cancelled, timed_out or failed)."""

    TYPE: ClassVar[str] = "cancel"
    status: str = "cancelled"
    reason: str = ""


def _typed(name: str, load: Callable[[Any], Any], value: Any) -> Any:
    """``load(value)``; a ValidationError becomes a ValueError naming the fields (never the values)."""
    try:
        return load(value)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{'.'.join(map(str, (name, *e['loc'])))}: {e['msg']}"
                                   for e in exc.errors()[:5])) from None


_TYPES: dict[str, type[_Msg]] = {c.TYPE: c for c in (RunRequest, LoadRequest, Batch, EndOfBatches, Event, Cancel)}


def decode(raw: bytes, expect: type[_Msg] | None = None) -> Any:
    """Decode any message, its snapshots typed. Raises DecodeError (raw bytes attached) when
    malformed, of an unknown type or version, or not of the ``expect``-ed type."""
    body = codec.decode(raw)
    if not isinstance(body, dict):
        raise DecodeError("message body is not a map", raw[:256])
    cls = _TYPES.get(body.get("t"))  # type: ignore[arg-type]
    if cls is None:
        raise DecodeError(f"unknown message type {body.get('t')!r}", raw[:256])
    if body.get("v") != VERSION:
        raise DecodeError(f"unsupported message version {body.get('v')!r} of a {cls.TYPE!r} message "
                          f"(this release reads version {VERSION})", raw[:256])
    if expect is not None and cls is not expect:
        raise DecodeError(f"expected a {expect.TYPE!r} message, got {cls.TYPE!r}", raw[:256])
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in cls._parse(body).items() if k in names})
    except (TypeError, ValueError) as exc:  # e.g. a snapshot this release does not understand
        raise DecodeError(f"malformed {cls.TYPE!r} message: {exc}", raw[:256]) from None
