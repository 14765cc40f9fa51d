"""PostgreSQL values Python's types cannot hold, read and written exactly.

psycopg2's default conversions change some values silently: ``infinity``/``-infinity``
timestamps and dates become ``datetime.max``/``min`` (BC dates and years past 9999 fail), ``time '24:00:00'`` becomes
midnight, ``interval '1 mon'`` becomes 30 days. The source session registers casters that
keep such a value as its PostgreSQL text instead (a ``str`` in a temporal column, which
PostgreSQL destinations read back exactly and other engines refuse, naming the column).
Intervals become ``timedelta`` only when writing the ``timedelta`` back gives the same
interval (no months or years, hours below 24, days and time of one sign).
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

# output the casters and the fast path rely on, set on every source session (after user options)
SOURCE_SETTINGS = ("SET extra_float_digits = 3; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; "
                   "SET bytea_output = 'hex'")
TEMPORAL_TYPES = frozenset({"date", "time", "timetz", "timestamp", "timestamptz", "interval"})
_INFINITE = ("infinity", "-infinity")
_INTERVAL = re.compile(r"^(?:([+-]?\d+) years? ?)?(?:([+-]?\d+) mons? ?)?(?:([+-]?\d+) days? ?)?"
                       r"(?:([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?$")
_DAY_US = 86_400_000_000


def parse_interval(text: str) -> timedelta | str:
    """An interval in the ``postgres`` IntervalStyle as the ``timedelta`` that writes back the
    same interval, or the text itself when no ``timedelta`` does."""
    m = _INTERVAL.match(text)
    if not m or not text:
        return text
    years, months, days, sign, hours, minutes, seconds, frac = m.groups()
    if int(years or 0) or int(months or 0) or int(hours or 0) >= 24:
        return text
    d = int(days or 0)
    t = (int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)) * 1_000_000
    t = (t + int((frac or "0").ljust(6, "0"))) * (-1 if sign == "-" else 1)
    if d and t and (d > 0) != (t > 0):
        return text
    return timedelta(days=d, microseconds=t)


def interval_text(value: timedelta) -> str:
    """A ``timedelta`` as interval input PostgreSQL stores as days and time of one sign."""
    total = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if total < 0 else ""
    days, micros = divmod(abs(total), _DAY_US)
    return f"{sign}{days} days {sign}{micros} microseconds"


def register_exact_casters(dbapi_conn: Any) -> None:
    """On this connection: infinite dates/timestamps, ``24:00:00`` and month intervals as text."""
    import psycopg2.extensions as ext

    def keeping(default: Any, special: Any) -> Any:
        def cast(value: str | None, cur: Any) -> Any:
            if value is None or special(value):
                return value
            try:
                return default(value, cur)
            except ValueError:  # BC or beyond year 9999: Python's types stop there
                return value
        return cast

    infinite = _INFINITE.__contains__
    casters = {
        "DM_DATE": ((1082,), keeping(ext.PYDATE, infinite)),
        "DM_TIMESTAMP": ((1114,), keeping(ext.PYDATETIME, infinite)),
        "DM_TIMESTAMPTZ": ((1184,), keeping(ext.PYDATETIMETZ, infinite)),
        "DM_TIME": ((1083, 1266), keeping(ext.PYTIME, lambda v: v.startswith("24:"))),
        "DM_INTERVAL": ((1186,), lambda value, _cur: None if value is None else parse_interval(value)),
    }
    for name, (oids, cast) in casters.items():
        ext.register_type(ext.new_type(oids, name, cast), dbapi_conn)



def register_source_casters(scope: Any) -> None:
    """The conversions of a source session on a connection or a cursor: JSON, JSONB and every
    array type as their text, and :func:`register_exact_casters`."""
    import psycopg2.extensions as ext

    def as_text(value: Any, _cur: Any) -> Any:
        return value

    oids = [114, 3802] + [oid for oid, c in ext.string_types.items() if c.name.endswith("ARRAY")]
    ext.register_type(ext.new_type(tuple(oids), "DM_AS_TEXT", as_text), scope)
    register_exact_casters(scope)
