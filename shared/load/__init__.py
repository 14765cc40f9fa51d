"""Writing one execution's rows into the destination table: the four modes.

The promise (the README quotes this):

* **One transaction.** Every write of an execution happens in ONE destination
  transaction. :meth:`LoadSession.commit` makes it visible; after
  :meth:`LoadSession.rollback` (failed, cancelled, timed out) or a killed loader the
  destination is exactly as before, and readers see the old rows until commit.
* **Columns** match by name, case-insensitively. Destination columns absent from
  the source keep their defaults. A source column missing in the destination, or a
  NOT NULL destination column without default (and not engine-assigned: identity,
  serial, auto-increment, SQLite rowid) missing in the source, fails validation
  (:class:`shared.errors.ValidationFailed`, naming table and columns).
* **Key**: the destination's primary key, or ``key_columns`` backed by a primary key
  or unique index on exactly those columns.
* ``insert_only``: inserts every source row. A row whose key already exists in the
  destination is skipped and counted in ``rows_skipped``.
  Only key conflicts are skipped; any other error (NOT NULL, type, check, foreign key,
  too long, another unique index) fails the row. Without a key (or when the source
  lacks an engine-generated key): plain inserts. Never ``INSERT IGNORE``.
* ``upsert``: inserts new keys, updates existing ones; needs a key present in the
  source. A row whose destination row already holds equal values (NULL equals NULL)
  is not rewritten and counts as **skipped**, so ``rows_updated`` counts rows whose
  values changed and ``inserted + updated + skipped + failed`` = rows written.
  (MySQL/MariaDB's ``ON DUPLICATE KEY UPDATE`` also fires on other unique indexes.)
* ``truncate_load``: deletes every destination row with ``DELETE`` inside the
  transaction (counted in ``rows_deleted``), then inserts the source rows: the table
  ends with exactly the source rows, atomically. Not ``TRUNCATE``: it commits
  implicitly on MySQL/MariaDB, and on PostgreSQL its ACCESS EXCLUSIVE lock would
  block readers instead of letting them see the old rows until commit.
* ``sync_delete``: upsert, then at :meth:`LoadSession.finish` delete destination
  rows whose key was not in the source (anti-join against a staging table of seen
  keys). A source row that failed to write still counts as present. An empty source
  raises :class:`shared.errors.SyncDeleteGuard` (nothing deleted) unless
  ``allow_empty_source``; deleting more than ``max_delete_ratio`` of the destination
  rows raises it too (the caller rolls back).
* **Duplicate keys** (:mod:`shared.load.keys`): in every keyed mode, a source row whose
  key the destination considers equal (its collation, trailing spaces) to a key this
  execution already wrote fails (the first row of a key wins); never a silent merge.
* **Row-level errors** (:mod:`shared.load.isolation`): each batch goes the fast bulk way first (clean data pays
  nothing more). A batch that fails with a row-level error (data, constraint) is
  rolled back to a SAVEPOINT (released after use) and split, recursively, until the bad
  rows are isolated (halves first, then pieces sized by the bad-row density seen so
  far); every good row is still written. NULLs the engine certainly refuses
  (``Dialect.null_refusals``) fail before reaching the database. Each bad row becomes a
  :class:`FailedRow` (1-based position in the source result, values with long text
  truncated and bytes as a hex prefix, the database's message, UTC time). A value the
  engine cannot hold at all fails its row before reaching the database.
  ``max_consecutive_failures`` (100) consecutive failed rows, across batches, raise
  :class:`shared.errors.TooManyFailures`. Statement-level errors (permissions, a
  dropped table) raise :class:`shared.errors.DestinationError` at once; transient
  ones (lost connection, deadlock, serialization failure, lock or statement timeout)
  raise ``ConnectionLost`` or a ``DestinationError`` with ``transient = True``;
  after :meth:`LoadSession.cancel`, ``Cancelled``. ``Dialect.is_transient(exc)``
  classifies a raw database error.
* **Types**: values arrive unchanged where the engine can hold them: 64-bit
  integers, exact decimals, floats, booleans, 4-byte UTF-8 (utf8mb4), long text,
  binary with zero bytes, dates, times, timestamps, UUID, JSON text, NULL. Documented
  conversions: a tz-aware timestamp goes into a column without time zone (PostgreSQL
  ``timestamp``, MySQL ``DATETIME``/``TIMESTAMP``, SQLite) as the same instant in
  UTC; a naive value into a tz-aware column is taken as UTC (sessions run in UTC). A
  UUID goes into ``BINARY(16)``/``BLOB`` as its 16 bytes, into ``CHAR(32)`` as hex,
  elsewhere as its 36-character text. Booleans go into integer columns as 1/0.
  Lists and dicts go into JSON or text columns as JSON text. Fractional seconds and
  decimal digits beyond a column's declared precision are rounded by the engine.
  Refused rows: NaN/infinity into MySQL/MariaDB or NaN into SQLite; NUL characters in
  PostgreSQL text; decimals with more than 15 significant digits into a SQLite
  NUMERIC column (SQLite would round them; declare the column TEXT); integers beyond
  64 bits where the engine has no bigger type. SQLite does not enforce declared
  lengths; the loader enables its foreign key checks for the load connection.

``LoadCounts`` is cumulative and readable between batches (progress events).
"""
from __future__ import annotations

from shared.load.destination import check_destination
from shared.load.results import FailedRow, LoadCounts
from shared.load.session import LoadSession

__all__ = ["FailedRow", "LoadCounts", "LoadSession", "check_destination"]
