"""Wire messages between services, with encode/decode next to the models.

Every message carries a type ``t``, a version ``v``, a message id ``id`` and the
execution id ``run`` for correlation; ``seq`` orders a sender's messages so that
handlers stay idempotent when a message repeats or arrives late.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from shared import codec
from shared.errors import DecodeError

VERSION = 1


@dataclass
class _Msg:
    TYPE: ClassVar[str] = ""
    run: int = 0

    def encode(self) -> bytes:
        body = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: no copy of a batch's rows
        body.update(t=self.TYPE, v=VERSION, id=uuid.uuid4().hex)
        return codec.encode(body)


@dataclass
class RunRequest(_Msg):
    """Ask an extractor to run an execution. ``job`` is a JobSpec snapshot; ``projects``
    maps project id to its connection snapshot with the password encrypted."""

    TYPE: ClassVar[str] = "run"
    job_id: int = 0
    attempt: int = 1
    job: dict = field(default_factory=dict)
    projects: dict = field(default_factory=dict)
    deadline: float = 0.0  # epoch seconds
    batch_rows: int = 0
    execution_key: str = ""  # the execution's identity in the destination's datamig_state
    watermark: dict = field(default_factory=dict)  # incremental jobs: the stored {value, kind, seen}


@dataclass
class LoadRequest(_Msg):
    """Ask a loader to own an execution and apply its batch queue to the destination."""

    TYPE: ClassVar[str] = "load"
    job_id: int = 0
    job_name: str = ""
    batch_queue: str = ""
    columns: list = field(default_factory=list)  # Column dicts
    destination: dict = field(default_factory=dict)  # DestinationSpec dict
    project: dict = field(default_factory=dict)  # destination connection snapshot
    deadline: float = 0.0
    timeout_s: float = 0.0
    execution_key: str = ""  # as in RunRequest


@dataclass
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


@dataclass
class EndOfBatches(_Msg):
    """The last message of a batch queue: the extraction finished (``ok``) or aborted."""

    TYPE: ClassVar[str] = "end"
    seq: int = 0
    rows_read: int = 0
    ok: bool = True
    error: dict = field(default_factory=dict)
    watermark: dict = field(default_factory=dict)  # incremental jobs: {from, to, kind, seen, lag}, committed with the rows


@dataclass
class Event(_Msg):
    """Progress, heartbeat and final status, published to the events exchange.

    ``kind``: started | progress | heartbeat | finished. ``counts`` holds any of
    rows_read, rows_inserted, rows_updated, rows_skipped, rows_deleted, rows_failed.
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
    watermark: dict = field(default_factory=dict)  # finished + committed: the watermark the destination holds


@dataclass
class Cancel(_Msg):
    """Ask every worker to stop an execution (status cancelled, timed_out or failed)."""

    TYPE: ClassVar[str] = "cancel"
    status: str = "cancelled"
    reason: str = ""


_TYPES: dict[str, type[_Msg]] = {c.TYPE: c for c in (RunRequest, LoadRequest, Batch, EndOfBatches, Event, Cancel)}


def decode(raw: bytes, expect: type[_Msg] | None = None) -> Any:
    """Decode any message. Raises DecodeError (raw bytes attached) when malformed."""
    body = codec.decode(raw)
    if not isinstance(body, dict):
        raise DecodeError("message body is not a map", raw[:256])
    cls = _TYPES.get(body.get("t"))  # type: ignore[arg-type]
    if cls is None:
        raise DecodeError(f"unknown message type {body.get('t')!r}", raw[:256])
    if body.get("v") != VERSION:
        raise DecodeError(f"unsupported message version {body.get('v')!r}", raw[:256])
    if expect is not None and cls is not expect:
        raise DecodeError(f"expected a {expect.TYPE!r} message, got {cls.TYPE!r}", raw[:256])
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in body.items() if k in names})
    except TypeError as exc:
        raise DecodeError(f"malformed {cls.TYPE!r} message: {exc}", raw[:256]) from None
