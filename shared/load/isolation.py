"""Row isolation: a batch the database refuses is split until its bad rows stand alone.

The writing half of :class:`shared.load.session.LoadSession` (a mixin: it shares the
session's connection, destination, counts and dialect). Each attempt runs inside a
SAVEPOINT that is released afterwards, also after a rollback to it, so the number of
open savepoints never grows with the number of bad rows (PostgreSQL keeps a rolled-back
savepoint open until it is released: thousands of them exhaust its lock table).

Splitting adapts to how dense the bad rows are: the first failing batch is halved;
once bad rows have been seen, a failing span of rows is cut into pieces of about half the
observed gap between bad rows, down to single rows when most rows are bad, instead of
halving a batch ``log2(n)`` times where every half fails again. When the pieces would be
single rows and the engine can (``Dialect.server_isolation``), the span is staged once and
the server tries each row on its own in one round trip.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable

import sqlalchemy as sa

from shared.dialects.loading import DuplicateKeysInBatch
from shared.errors import Cancelled, DestinationError, TooManyFailures
from shared.load.results import FailedRow, failed_row

_Item = tuple[int, tuple, Any]  # (1-based position, source row, encoded row)
_Encoded = tuple[int, tuple, Any, "str | None"]


class DuplicateKeyRow(Exception):
    """Internal signal: a single row's key was already written by this execution."""


class RowIsolation:
    """Mixin: :meth:`write` with bad-row isolation. Needs the session's attributes (see LoadSession)."""

    _iso_rows = 0  # rows resolved while isolating (good and bad)
    _iso_bad = 0
    _iso_handle: Any = None

    def write(self, rows: list[tuple]) -> list[FailedRow]:
        """Apply one batch (rows in ``columns`` order); returns this batch's failed rows.

        Rows that fail before the database (a value it cannot hold, a NULL it refuses) are set
        aside and the rest is written as one span; consecutive failures are then counted in source
        order. Raises TooManyFailures (``failed_rows``: this batch's failures up to the stop),
        Cancelled, ConnectionLost, DestinationError (statement-level or transient errors).
        """
        conn = self._require_open()
        first = self.rows_received + 1
        self.rows_received += len(rows)
        self._iso_rows, self._iso_bad = self._iso_rows // 2, self._iso_bad // 2  # older batches weigh less
        failures: list[FailedRow] = []
        present: list[tuple] = []  # failed rows whose keys a sync_delete must still see
        span: list[_Item] = []
        for position, row, encoded, error in self._encode_rows(rows, first):
            if error is None:
                span.append((position, row, encoded))
            else:
                self._fail(position, row, error, failures)
                present.append(row)
        if span:
            self._apply(conn, span, failures, present)
        if self._seen is not None and present:
            self._remember_keys(conn, present)
        failures.sort(key=lambda f: f.position)
        self._count_failures(failures, first, len(rows))
        return failures

    def _count_failures(self, failures: list[FailedRow], first: int, size: int) -> None:
        """Add the batch's failures to the counts, tracking consecutive ones across batches.

        Raises TooManyFailures at the limit (its ``failed_rows``: the failures up to there)."""
        streak, last = self._consecutive, first - 1
        for index, failure in enumerate(failures):
            streak = streak + 1 if failure.position == last + 1 else 1
            last = failure.position
            if streak >= self.max_consecutive_failures:
                self.counts.rows_failed += index + 1
                exc = TooManyFailures(streak)
                exc.failed_rows = failures[:index + 1]  # type: ignore[attr-defined]
                raise exc
        self.counts.rows_failed += len(failures)
        self._consecutive = streak if failures and last == first + size - 1 else 0

    def _encode_rows(self, rows: list[tuple], first: int) -> list[_Encoded]:
        """Encode each row; a value the engine cannot hold (or a NULL it refuses) marks its row."""
        refuse = self._null_refused
        try:
            items = [(p, r, e, None) for p, r, e in zip(range(first, first + len(rows)), rows, map(self._encode, rows))]
        except (ValueError, TypeError, OverflowError):
            items = [self._encode_one(position, row) for position, row in enumerate(rows, first)]
        if refuse:
            items = [(p, r, e, err if err is not None else self._null_error(r)) for p, r, e, err in items]
        return items

    def _encode_one(self, position: int, row: tuple) -> _Encoded:
        try:
            return position, row, self._encode(row), None
        except (ValueError, TypeError, OverflowError) as exc:
            return position, row, None, str(exc) or type(exc).__name__

    def _null_error(self, row: tuple) -> str | None:
        """The engine's own message when ``row`` holds NULL where the destination certainly refuses it."""
        for index, message in self._null_refused:
            if row[index] is None:
                return message
        return None

    def _apply(self, conn: sa.Connection, span: list[_Item], failures: list[FailedRow], present: list[tuple]) -> None:
        """Fast path first; on a row-level error split (SAVEPOINTs) down to single rows."""
        error = self._attempt(conn, span)
        if error is None:
            if self._iso_bad:
                self._iso_rows += len(span)
            return
        if len(span) == 1:
            self._iso_rows += 1
            self._iso_bad += 1
            self._fail(span[0][0], span[0][1], error or "duplicate key in the batch", failures)
            present.append(span[0][1])
            return
        pieces = self._pieces(span)
        if len(pieces[0]) == 1 and self.dialect.server_isolation and self._isolate_on_server(conn, span, failures):
            return
        for part in pieces:
            self._apply(conn, part, failures, present)

    def _isolate_on_server(self, conn: sa.Connection, span: list[_Item], failures: list[FailedRow]) -> bool:
        """Stage ``span`` once and let the server try each row on its own (``Dialect.run_isolation``).

        False when the rows cannot even be staged (then the client splits as usual)."""
        handle = self._server_isolation(conn)
        if handle is False:
            return False
        savepoint = conn.begin_nested()
        try:
            results = self.dialect.run_isolation(conn, handle, columns=self._dest.columns,
                                                 rows=[encoded for _, _, encoded in span])
            savepoint.commit()
        except sa.exc.DBAPIError as exc:
            self._raise_for(exc, rows_level_ok=True)
            self._undo(conn, savepoint, exc)
            return False
        for position, error, inserted, updated in results:
            item = span[position - 1]
            self._iso_rows += 1
            if error:
                self._iso_bad += 1
                self._fail(item[0], item[1], error, failures)  # the server recorded its key already
                continue
            self.counts.rows_inserted += inserted
            self.counts.rows_updated += updated
            self.counts.rows_skipped += 1 - inserted - updated
        return True

    def _server_isolation(self, conn: sa.Connection) -> Any:
        """The server-side isolation handle, made once per session; False when it cannot be made."""
        if self._iso_handle is None:
            token = uuid.uuid4().hex[:8]
            dest = self._dest
            staging = self._staging
            if staging is None:  # plain inserts go straight to the destination: stage for isolation only
                staging = self.dialect.create_staging(conn, f"dm_iso_{token}", dest.table, dest.columns)
            savepoint = conn.begin_nested()
            try:
                self._iso_handle = self.dialect.create_isolation(
                    conn, token=token, staging=staging, target=dest.table, columns=dest.columns,
                    key=dest.key if self._written is not None else [], mode=self.mode.value,
                    written=self._written.table if self._written is not None else None, seen=self._seen)
                savepoint.commit()
            except sa.exc.DBAPIError as exc:  # e.g. no right to create functions: split on the client
                if self._cancelled or self.dialect.is_transient(exc):
                    self._raise_for(exc)
                self._undo(conn, savepoint, exc)
                self._iso_handle = False
        return self._iso_handle

    def _pieces(self, span: list[_Item]) -> list[list[_Item]]:
        """Halves at first; pieces of about half the observed gap between bad rows once some were seen."""
        size = len(span) // 2 if len(span) > 1 else 1
        if self._iso_bad:
            size = max(1, min(size, self._iso_rows // (2 * self._iso_bad)))
        return [span[i:i + size] for i in range(0, len(span), size)]

    def _attempt(self, conn: sa.Connection, span: list[_Item]) -> str | None:
        """Apply ``span`` inside a SAVEPOINT: None when written, else why not ('' = only split it)."""
        if self._cancelled:
            raise Cancelled(f"loading into {self.table} was cancelled")
        savepoint = None if self.dialect.statement_rollback else conn.begin_nested()
        try:
            delta = self._apply_batch(conn, [encoded for _, _, encoded in span])
            if savepoint is not None:
                savepoint.commit()
        except DuplicateKeysInBatch:
            self._undo(conn, savepoint, None)  # split so each key's rows apply in source order
            return ""
        except DuplicateKeyRow as exc:
            self._undo(conn, savepoint, None)
            return str(exc)
        except sa.exc.DBAPIError as exc:
            self._raise_for(exc, rows_level_ok=True)  # transient/statement-level: leave the savepoint alone
            self._undo(conn, savepoint, exc)
            return self.dialect.load_error_message(exc) or "rejected by the database"
        self.counts.add(delta)
        return None

    def _undo(self, conn: sa.Connection, savepoint: sa.NestedTransaction | None,
              cause: BaseException | None) -> None:
        """Roll back to the SAVEPOINT and release it. Raises DestinationError when the transaction is gone."""
        if savepoint is None:  # the failed statement undid itself (statement_rollback)
            return
        try:
            savepoint.rollback()
            name = getattr(savepoint, "_savepoint", None)
            if name and self.dialect.release_after_rollback:
                conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
        except sa.exc.DBAPIError as exc:
            raise DestinationError(f"writing to {self.table} failed and the transaction was lost: "
                                   f"{self.dialect.load_error_message(cause or exc)}") from (cause or exc)

    def _fail(self, position: int, row: tuple, error: str, failures: list[FailedRow]) -> None:
        """Record a failed row of this batch (counted by :meth:`_count_failures`)."""
        failures.append(failed_row(position, self._dest.columns, row, error))

    def _remember_keys(self, conn: sa.Connection, rows: list[tuple]) -> None:
        """sync_delete: rows that failed to write still count as present in the source."""
        keys = []
        for row in rows:
            key = tuple(row[i] for i in self._key_index)
            if any(v is None for v in key):
                continue  # a NULL key matches no destination row
            try:
                keys.append(self._encode_key(key))
            except (ValueError, TypeError, OverflowError):
                continue  # a key the destination cannot hold matches none of its rows
        if not keys:
            return
        try:
            with conn.begin_nested():
                self.dialect.bulk_insert(conn, self._seen, self._dest.key, keys)
        except sa.exc.DBAPIError as exc:
            self._raise_for(exc)

    # provided by LoadSession
    _encode: Callable[[tuple], Any]
    _null_refused: list[tuple[int, str]]
