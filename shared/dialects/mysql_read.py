"""MySQL/MariaDB EXTRACTION helpers: the session settings reads rely on, and the read wrapper
that keeps FLOAT values exact.

* Sessions read in UTC (``time_zone = '+00:00'``, set after connecting, so after any
  ``init_command``): a TIMESTAMP arrives as the instant it holds, whatever the server's or
  the session's default zone. ``NOW()`` in a step is therefore UTC.
* Zero and invalid dates (``0000-00-00``, ``2021-02-30``) stay storable in the session's
  temporary tables (``ALLOW_INVALID_DATES``, no ``NO_ZERO_DATE``/``NO_ZERO_IN_DATE``).
* A FLOAT (float4) column's text form has 6 significant digits (16777216 → 16777200): such
  a result is read through ``SELECT … CAST(f AS DOUBLE) … FROM (query) dm_q``, which gives
  the float4 value exactly. MariaDB ignores the ORDER BY of a merged derived table, so for
  a query containing ORDER BY the derived table is materialised (``derived_merge=off``),
  which keeps the order.
"""
from __future__ import annotations

from typing import Any

from shared.types import Column

FLOAT4_PRECISION = 24  # Column.precision of a FLOAT (float4) column; DOUBLE has none
_DATE_CHECKS = ("NO_ZERO_DATE", "NO_ZERO_IN_DATE")


def session_modes(current: str, *, add: tuple[str, ...] = ()) -> str:
    """``current`` sql_mode accepting zero and invalid dates (as the tables may hold them), plus ``add``."""
    modes = [m for m in (current or "").split(",") if m and m not in _DATE_CHECKS]
    for mode in ("ALLOW_INVALID_DATES", *add):
        if mode not in modes:
            modes.append(mode)
    return ",".join(modes)


def setup_source_session(dbapi_conn: Any) -> None:
    """Dates storable as they are in temporary tables; then, last, the UTC time zone."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SELECT @@SESSION.sql_mode")
        cur.execute("SET SESSION sql_mode = %s", (session_modes(cur.fetchone()[0]),))
        cur.execute("SET SESSION time_zone = '+00:00'")
    finally:
        cur.close()


def float_read_sql(sql: str, columns: list[Column]) -> tuple[str, bool] | None:
    """``(wrapped sql, needs materialising)`` reading FLOAT columns as DOUBLE (None: nothing to do)."""
    if not any(c.type == "float" and c.precision == FLOAT4_PRECISION for c in columns):
        return None
    fields = []
    for c in columns:
        ref = "dm_q.`" + c.name.replace("`", "``") + "`"
        fields.append(f"CAST({ref} AS DOUBLE) AS `{c.name.replace('`', '``')}`"
                      if c.type == "float" and c.precision == FLOAT4_PRECISION else ref)
    return f"SELECT {', '.join(fields)} FROM (\n{sql}\n) dm_q", "order" in sql.lower()
