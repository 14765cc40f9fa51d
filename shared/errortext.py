"""Error text for people: the database's own message, projects by name, one prefix.

Driver errors reach users through several layers, each adding its own words:
SQLAlchemy's ``(pymysql.err.OperationalError) (1045, "Access denied …")`` with
``[SQL: …]`` and a "Background on this error" link, our ``(project 3, postgresql)``,
and a kind repeated by the message (``validation: validation failed: …``). ``clean``
keeps what the database said; ``name_projects`` names projects; ``without_kind`` drops
a leading repeat of the error's kind (the page shows the kind once, as a heading).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

_WRAPPER = re.compile(r"\((?:[a-z_]+\.)+[A-Za-z_]*(?:Error|Exception|Warning)\)\s*")  # (pymysql.err.OperationalError)
_SQL_TAIL = re.compile(r"\s*\[SQL: .*?\](?=\s|$)|\s*\[parameters: .*?\](?=\s|$)", re.S)
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")
_TUPLE = re.compile(r"\((\d{3,5}), ([\"'])(.*?)\2\)", re.S)  # (1045, "Access denied …")
_PROJECT = re.compile(r"\bproject (\d+)(, ([a-z]+))?")
_KIND_PREFIX = {"validation": ("validation failed", "validation"), "source": ("source error", "source"),
                "destination": ("destination error", "destination"), "connection": ("connection failed", "connection")}


def clean(text: str) -> str:
    """The database's message without driver wrappers, tuples, SQL echo and links."""
    text = _BACKGROUND.sub("", _SQL_TAIL.sub("", _WRAPPER.sub("", str(text))))
    text = _TUPLE.sub(lambda m: f"{m.group(3)} (error {m.group(1)})", text)
    return " ".join(text.split())


def db_message(exc: BaseException) -> str:
    """What the database said about ``exc`` (a driver or SQLAlchemy error), cleanly."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:  # psycopg2: the message without "DETAIL/HINT" layout noise
        detail = getattr(diag, "message_detail", None)
        return f"{primary} ({detail})" if detail else primary
    args = getattr(orig, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):  # pymysql (code, message)
        return f"{args[1]} (error {args[0]})"
    return clean(str(orig) or type(orig).__name__)


def name_projects(text: str, names: Mapping[int, str]) -> str:
    """``project 3, postgresql`` → ``project “Shop”, postgresql`` for the projects we know."""
    def one(m: re.Match) -> str:
        name = names.get(int(m.group(1)))
        if name is None:
            return m.group(0)
        return f"project “{name}”{m.group(2) or ''}"
    return _PROJECT.sub(one, text)


def without_kind(text: str, kind: str | None) -> str:
    """Drop a leading ``validation failed: `` (or ``validation: ``) when the kind says it already."""
    for prefix in _KIND_PREFIX.get(kind or "", ()):
        if text.lower().startswith(prefix + ": "):
            return text[len(prefix) + 2:]
    return text


def for_people(text: str | None, *, kind: str | None = None, names: Mapping[int, str] | None = None) -> str | None:
    """All three: clean, projects named, kind said once."""
    if text is None:
        return None
    return without_kind(name_projects(clean(text), names or {}), kind)
