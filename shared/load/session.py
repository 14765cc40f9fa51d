"""LoadSession: one execution's writes to the destination, in ONE transaction.

(A little over 300 lines: the hooks of the verification before COMMIT, :mod:`shared.load.verify`,
are ~20 of them; its logic lives there.)

The engine-neutral half of the loader. Everything that differs per engine (bulk
path, mode statements, value encoding, error classification, cancel) is a method of
the engine's :class:`shared.dialects.Dialect`.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Callable

import sqlalchemy as sa

from shared import metrics
from shared.dialects import DestinationSide, get_dialect
from shared.dialects.bulk import FORMATS as BULK_TEXTS, parse as parse_bulk, same_text
from shared.dialects.exact import rounding_risk
from shared.dialects.loading import BulkRefused, DuplicateKeysInBatch, kind_of
from shared.errors import Cancelled, ConnectionLost, DestinationError, SyncDeleteGuard
from shared.jobspec import Mode
from shared.engine_cache import is_cached
from shared.load.destination import Destination, resolve_destination
from shared.load.isolation import DuplicateKeyRow, RowIsolation
from shared.load.keys import WrittenKeys
from shared.load.results import FailedRow, LoadCounts
from shared.load.verify import VerificationFailed, Verifier, skipped
from shared.types import Column

log = logging.getLogger(__name__)
DEFAULT_MAX_CONSECUTIVE_FAILURES = 100
MAX_BULK_REFUSALS = 3  # consecutive bulk-text batches refused before the session stops trying the fast path


class LoadSession(RowIsolation):
    """Applies a mode to a destination table batch by batch; see :mod:`shared.load`."""

    def __init__(self, engine: sa.Engine, *, table: str, columns: list[Column], mode: Mode,
                 key_columns: list[str] | None = None, allow_empty_source: bool = False,
                 max_delete_ratio: float | None = None,
                 max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
                 statement_timeout_s: float | None = None, allow_rounding: bool = False,
                 verify: str = "count") -> None:
        self.engine, self.table, self.columns, self.mode = engine, table, list(columns), Mode(mode)
        self.key_columns = list(key_columns) if key_columns else None
        self.allow_empty_source, self.max_delete_ratio = allow_empty_source, max_delete_ratio
        self.max_consecutive_failures, self.statement_timeout_s = max_consecutive_failures, statement_timeout_s
        self.dialect: DestinationSide = get_dialect(engine.dialect.name)
        self.allow_rounding = self.dialect.allow_rounding = allow_rounding
        self.counts = LoadCounts()
        self.verify, self.verification = verify, skipped()  # see shared.load.verify
        self._verifier: Verifier | None = None
        self.rows_received = 0
        self._conn: sa.Connection | None = None
        self._trans: sa.RootTransaction | None = None
        self._dest: Destination | None = None
        self._staging: sa.TableClause | None = None
        self._seen: sa.TableClause | None = None
        self._written: WrittenKeys | None = None
        self._handle: Any = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._broken = False  # a rollback failed: the connection is never reused
        self._consecutive = 0
        self._kinds: list[str] = []
        self._bulk_cache: dict[str, bool] = {}
        self._bulk_refusals = 0
        self._dirty = 0  # rows staged since the staging table was last emptied for good

    @property
    def key(self) -> list[str]:
        """The destination's key columns (after :meth:`begin`; empty without a key)."""
        return list(self._dest.key) if self._dest is not None else []

    # ------------------------------------------------------------------ lifecycle
    def begin(self, *, claim: Callable[[sa.Connection], None] | None = None) -> None:
        """Connect, check the destination, open THE transaction and prepare staging.

        ``claim(conn)`` runs as the transaction's first statement (the execution's row in
        :mod:`shared.load.state`). Raises ValidationFailed (table, columns or key do not
        fit), ConnectionLost, DestinationError, and whatever ``claim`` raises.
        """
        conn = self.engine.connect()
        with self._lock:
            self._conn = conn
        try:
            self.dialect.prepare_load_connection(conn)
            self._trans = conn.begin()
            self.dialect.start_load_transaction(conn, statement_timeout_s=self.statement_timeout_s)
            if claim is not None:
                claim(conn)
            with self._lock:
                self._handle = self.dialect.load_cancel_handle(conn)
            self._dest = resolve_destination(conn, table=self.table, columns=self.columns, mode=self.mode,
                                             key_columns=self.key_columns)
            self._prepare(conn, self._dest)
        except sa.exc.DBAPIError as exc:
            self.close()
            self._raise_for(exc)
        except BaseException:
            self.close()
            raise

    def _prepare(self, conn: sa.Connection, dest: Destination) -> None:
        """Encoders, truncate_load's clearing, the staging and seen-keys tables."""
        targets = [dest.table.c[c] for c in dest.columns]
        self._encode = self.dialect.row_encoder(targets, self.columns)
        self._kinds = [kind_of(t.type) for t in targets]
        self._null_refused = self.dialect.null_refusals(conn, dest.table, dest.columns)
        by_name = dict(zip(dest.columns, self.columns))
        self._key_index = [dest.columns.index(k) for k in dest.key]
        self._encode_key = self.dialect.row_encoder([dest.table.c[k] for k in dest.key],
                                                    [by_name[k] for k in dest.key])
        if self.mode is Mode.truncate_load:
            with metrics.phase("clear"):
                self.counts.rows_deleted += self.dialect.clear_destination(conn, dest.table)
        token = uuid.uuid4().hex[:8]
        self._keyed = bool(dest.key) and self.mode is not Mode.truncate_load  # emptied: dup keys fail
        if self._keyed or self.dialect.stage_plain_inserts or self.verify == "checksum":
            self._staging = self.dialect.create_staging(conn, f"dm_stage_{token}", dest.table, dest.columns)
        if self._keyed:
            self._written = WrittenKeys(self.dialect, conn, name=f"dm_keys_{token}", target=dest.table, key=dest.key)
        if self.mode is Mode.sync_delete:
            self._seen = self.dialect.create_key_table(conn, f"dm_seen_{token}", dest.table, dest.key)
        if self.verify != "none":
            self._verifier = Verifier(conn, level=self.verify, mode=self.mode, dest=dest, token=token,
                                      written=self._written.table if self._written else None, seen=self._seen,
                                      temp_prefix=self.dialect.temp_table_prefix)

    def commit(self, *, before: Callable[[sa.Connection], None] | None = None) -> None:
        """Commit THE transaction; ``before(conn)`` is its last statement (the execution's
        committed row in :mod:`shared.load.state`). Raises ConnectionLost or DestinationError."""
        if self._trans is None or not self._trans.is_active or self._conn is None:
            raise DestinationError("commit without an open load transaction")
        try:
            if before is not None:
                before(self._conn)
            self._trans.commit()
        except sa.exc.DBAPIError as exc:
            self._raise_for(exc)

    def rollback(self) -> None:
        """Roll back everything written; safe at any time and idempotent (never raises)."""
        trans, self._trans = self._trans, None
        if trans is not None and trans.is_active:
            try:
                trans.rollback()
            except Exception:  # noqa: BLE001 - a dead connection has nothing left to roll back
                self._broken = True
                log.warning("rollback of %s failed; the connection is discarded", self.table, exc_info=True)

    def close(self) -> None:
        """Roll back anything uncommitted and give the connection up: back to a kept engine's pool
        (which resets the session, :mod:`shared.engine_cache`) when nothing could have left it in
        an unknown state, else discarded with its session state. A cancel sets ``_cancelled``
        before it takes the lock, so a connection that a cancel may still reach is never reused."""
        self.rollback()
        with self._lock:
            conn, self._conn, self._handle = self._conn, None, None
            reusable = is_cached(self.engine) and not (self._cancelled or self._broken)
        if conn is not None:
            try:
                if not reusable or conn.invalidated or conn.in_transaction():
                    conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the load connection failed", exc_info=True)

    def cancel(self) -> None:
        """Cancel the statement running now (thread-safe); write/finish then raise Cancelled."""
        self._cancelled = True
        with self._lock:
            handle = self._handle
        if handle is not None:
            try:
                self.dialect.cancel_load_statement(self.engine, handle)
            except Exception:  # noqa: BLE001 - best effort; the flag stops the next statement
                log.warning("cancelling the running statement on %s failed", self.table, exc_info=True)

    # ------------------------------------------------------------------ writing
    def write_bulk(self, payload: bytes, rows: int, fmt: str) -> list[FailedRow]:
        """Apply one batch given as bulk text (:mod:`shared.dialects.bulk`); returns its failed rows.

        The payload goes to the engine's bulk loader unchanged when the format and the
        column types allow (``same_text``); otherwise, or when the engine refuses the batch
        (bad data, warnings), it is parsed back into rows and written by :meth:`write`, which
        isolates the bad rows. Raises like :meth:`write`; ValueError for a malformed payload.
        """
        conn = self._require_open()
        if rows and self._bulk_ok(conn, fmt):
            savepoint = conn.begin_nested()
            try:
                delta = self._apply_staged(conn, rows, lambda table: self.dialect.bulk_import(
                    conn, table, self._dest.columns, payload, kinds=self._kinds, rows=rows,  # type: ignore[union-attr]
                    fmt=fmt))
                savepoint.commit()
            except (DuplicateKeysInBatch, DuplicateKeyRow, BulkRefused):  # a lone row's key too: written below
                self._undo(conn, savepoint, None)
            except sa.exc.DBAPIError as exc:
                self._raise_for(exc, rows_level_ok=True)  # transient/statement-level: raise
                self._undo(conn, savepoint, exc)
            else:
                self.rows_received += rows
                self.counts.add(delta)
                self._consecutive = self._bulk_refusals = 0
                return []
            self._bulk_refusals += 1
            if self._bulk_refusals >= MAX_BULK_REFUSALS:  # e.g. LOAD DATA LOCAL disabled on the server
                log.info("%s: %d bulk batches in a row refused; the rest goes the general way", self.table,
                         self._bulk_refusals)
                self._bulk_cache[fmt] = False
        if fmt in BULK_TEXTS:
            return self.write(parse_bulk(payload, fmt, self.columns))
        return self.write(self.dialect.decode_bulk(conn, payload, fmt, rows))  # e.g. binary COPY

    def _bulk_ok(self, conn: sa.Connection, fmt: str) -> bool:
        """Whether a payload in ``fmt`` may go to the bulk loader as it is (cached per format); the
        dialect proves a format that is not bulk text (binary COPY) on its own."""
        if fmt not in self._bulk_cache:
            assert self._dest is not None
            self._bulk_cache[fmt] = (self.dialect.bulk_import_accepts(conn, fmt, self._dest.table, self._dest.columns)
                                     and (fmt not in BULK_TEXTS or same_text(fmt, self.columns, self._kinds))
                                     and (self.allow_rounding or self.dialect.bulk_import_refuses_rounding
                                          or not self._may_round()))
        return self._bulk_cache[fmt]

    def _may_round(self) -> bool:
        """Whether the engine could round a bulk-text value to a column's scale (then the general path checks)."""
        assert self._dest is not None
        return any(rounding_risk(s, self._dest.table.c[n]) for s, n in zip(self.columns, self._dest.columns))

    def _apply_batch(self, conn: sa.Connection, encoded: list[Any]) -> LoadCounts:
        """One batch through the bulk path and the mode's set-based statement."""
        assert self._dest is not None
        columns = self._dest.columns
        return self._apply_staged(conn, len(encoded),
                                  lambda table: self.dialect.bulk_insert(conn, table, columns, encoded))

    @metrics.phased("merge")
    def _apply_staged(self, conn: sa.Connection, staged: int, load: Callable[[Any], None]) -> LoadCounts:
        """``load(table)`` puts ``staged`` rows into a table: the destination, or staging + the mode's statement."""
        dest, d = self._dest, self.dialect
        assert dest is not None
        if self._staging is None:
            with metrics.phase("load"):
                load(dest.table)
            return LoadCounts(rows_inserted=staged)
        if d.clear_staging(conn, self._staging, dirty=self._dirty):
            self._dirty = 0
        self._dirty += staged
        with metrics.phase("load"):
            load(self._staging)
        if self._written is not None:
            self._written.check(conn, self._staging)
        if self._verifier is not None:
            self._verifier.stage(conn, self._staging)
        if self.mode in (Mode.upsert, Mode.sync_delete):
            inserted, updated, unchanged = d.upsert(conn, dest.table, self._staging, dest.columns, dest.key, staged)
            counts = LoadCounts(rows_inserted=inserted, rows_updated=updated, rows_skipped=unchanged)
        elif self._keyed:
            inserted, skipped = d.insert_new(conn, dest.table, self._staging, dest.columns, dest.key, staged)
            counts = LoadCounts(rows_inserted=inserted, rows_skipped=skipped)
        else:
            counts = LoadCounts(rows_inserted=d.insert_all(conn, dest.table, self._staging, dest.columns))
        if self._written is not None:
            self._written.add(conn, self._staging)  # for sync_delete too: the written keys were seen
        elif self._seen is not None:
            d.record_seen(conn, self._seen, self._staging, dest.key)
        if self._verifier is not None:
            self._verifier.keep(conn, self._staging)
        return counts

    # ------------------------------------------------------------------ end of source
    def finish(self, *, extracted: int | None = None, verifying: Callable[[], None] | None = None) -> LoadCounts:
        """End of source: sync_delete's guards and deletes, then the verification
        (:attr:`verification`; ``extracted``: rows the extractor read; ``verifying()`` is called
        as it starts, e.g. to publish the phase). Does not commit.

        Raises SyncDeleteGuard (empty source without allow_empty_source, or more than
        max_delete_ratio of the destination would be deleted; nothing is deleted),
        VerificationFailed, Cancelled, ConnectionLost, DestinationError.
        """
        conn = self._require_open()
        try:
            if self.mode is Mode.sync_delete:
                self._sync_delete(conn)
            if self._verifier is not None:
                if verifying is not None:
                    verifying()
                with metrics.phase("verify"):
                    self.verification = self._verifier.run(conn, received=self.rows_received,
                                                           failed=self.counts.rows_failed, extracted=extracted)
        except VerificationFailed as exc:
            self.verification = exc.verification
            raise
        except sa.exc.DBAPIError as exc:
            self._raise_for(exc)
        return self.counts.copy()

    def _sync_delete(self, conn: sa.Connection) -> None:
        dest, seen = self._dest, self._seen
        assert dest is not None and seen is not None
        if self.rows_received == 0 and not self.allow_empty_source:
            raise SyncDeleteGuard(f"sync_delete into {self.table}: the source returned no rows, so nothing was "
                                  "deleted; allow an empty source on the job to empty the table")
        if self.max_delete_ratio is not None:  # counting is a full anti-join: only when a cap needs it
            self._check_delete_ratio(conn, dest, seen, self.max_delete_ratio)
        if self._cancelled:
            raise Cancelled(f"loading into {self.table} was cancelled")
        self.counts.rows_deleted += self.dialect.delete_unseen(conn, dest.table, self._seen_tables(), dest.key)

    def _check_delete_ratio(self, conn: sa.Connection, dest: Destination, seen: sa.TableClause, cap: float) -> None:
        doomed, total = self.dialect.count_sync_deletes(conn, dest.table, self._seen_tables(), dest.key)
        if total and doomed / total > cap:
            raise SyncDeleteGuard(f"sync_delete into {self.table} would delete {doomed} of {total} rows "
                                  f"({doomed / total:.1%}), more than the job's cap of {cap:.1%}")

    # ------------------------------------------------------------------ helpers
    def _seen_tables(self) -> list[sa.TableClause]:
        """sync_delete's source keys: those written (each batch's, recorded once) and ``_seen``
        (keys of failed rows, which still count as present in the source)."""
        assert self._seen is not None
        return [self._written.table, self._seen] if self._written is not None else [self._seen]

    def _require_open(self) -> sa.Connection:
        if self._cancelled:
            raise Cancelled(f"loading into {self.table} was cancelled")
        if self._conn is None or self._trans is None or not self._trans.is_active:
            raise DestinationError(f"the load session for {self.table} is not open (call begin())")
        return self._conn

    def _raise_for(self, exc: sa.exc.DBAPIError, *, rows_level_ok: bool = False) -> None:
        """Raise the domain error for a database error, unless it is about rows and that is ok.

        Raises Cancelled, ConnectionLost, DestinationError (``transient`` set when a retry
        may help: deadlock, serialization failure, lock or statement timeout).
        """
        message = self.dialect.load_error_message(exc)
        if self._cancelled:
            raise Cancelled(f"loading into {self.table} was cancelled") from exc
        if self.dialect.is_transient(exc):
            if exc.connection_invalidated:
                raise ConnectionLost(f"lost the connection to the destination: {message}") from exc
            error = DestinationError(f"writing to {self.table} failed (retryable): {message}")
            error.transient = True
            raise error from exc
        if not (rows_level_ok and self.dialect.is_row_error(exc)):
            raise DestinationError(f"writing to {self.table} failed: {message}") from exc
