"""One error hierarchy for every service, and the one rule for errors nothing classifies.

Whether a retry may heal a failure is decided in one place,
:func:`shared.dialects.classify.classify_error`:

1. our errors (this module) say it themselves (``transient``; a source or destination error
   takes it from the driver error behind it);
2. a driver's error is classified by its engine's dialect, by SQLSTATE / error number, never
   by the words of its message (wrong password, syntax, missing table: permanent; lost
   connection, deadlock, serialization failure, lock or statement timeout: transient);
3. anything else — no class of ours, no code its engine knows — follows
   :data:`UNKNOWN_IS_TRANSIENT`: it is **transient**, retried with backoff at most the job's
   ``max_retries`` times (a permanent error we could not recognise costs only those retries).
"""
from __future__ import annotations


UNKNOWN_IS_TRANSIENT = True  # rule 3 above (shared.dialects.classify.classify_unknown applies it)


class DatamigError(Exception):
    """Root of the project's errors."""

    transient: bool = False
    kind: str = "error"


class ConfigError(DatamigError):
    """A setting or a job definition is wrong; retrying will not help."""

    kind = "config"


class ValidationFailed(DatamigError):
    """A pre-execution validation check failed; ``report`` lists the checks."""

    kind = "validation"

    def __init__(self, message: str, report: list[dict] | None = None) -> None:
        self.report = report or []
        super().__init__(message)


class SourceError(DatamigError):
    """A source step failed (syntax error, missing table, permission)."""

    kind = "source"


class DestinationError(DatamigError):
    """Writing to the destination failed as a whole."""

    kind = "destination"


class TooManyFailures(DestinationError):
    """Too many consecutive rows failed; the execution stops and rolls back."""

    kind = "too_many_failures"

    def __init__(self, consecutive: int) -> None:
        self.consecutive = consecutive
        super().__init__(f"{consecutive} consecutive rows failed; execution stopped and rolled back")


class SyncDeleteGuard(DestinationError):
    """A sync_delete guard stopped the run (empty source or delete cap)."""

    kind = "sync_delete_guard"


class ConnectionLost(DatamigError):
    """A database or broker connection was lost or refused."""

    transient = True
    kind = "connection"


class TimedOut(DatamigError):
    """The execution ran past its deadline."""

    transient = True
    kind = "timeout"


class Cancelled(DatamigError):
    """A user cancelled the execution."""

    kind = "cancelled"


class WorkerLost(DatamigError):
    """The worker holding the execution stopped sending heartbeats."""

    transient = True
    kind = "worker_lost"


class TransportError(DatamigError):
    """The broker failed; raised at the transport boundary instead of pika's errors."""

    transient = True
    kind = "transport"


class DecodeError(DatamigError):
    """A message could not be decoded; it goes to the dead-letter queue."""

    kind = "decode"

    def __init__(self, message: str, raw: bytes = b"") -> None:
        self.raw = raw
        super().__init__(message)
