"""SQLite: both sides (``sqlite_source.py``, ``sqlite_destination.py``) and the core facts."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import URL

from shared.dialects.base import Dialect
from shared.dialects.sqlite_destination import SQLiteDestination
from shared.dialects.sqlite_source import SQLiteSource


class SQLiteDialect(SQLiteSource, SQLiteDestination, Dialect):
    """SQLite: the database is a file (no host, no port)."""

    name = "sqlite"
    driver = "sqlite"
    file_database = True
    connect_defaults: dict[str, Any] = {"timeout": 30, "check_same_thread": False}

    def with_open_mode(self, url: URL, mode: str) -> URL:
        """The file opened as a URI with ``mode`` (``ro``: read-only, ``rw``: no creating the file)."""
        path = url.database or ""
        if not path or path == ":memory:" or path.startswith("file:"):
            return url
        return url.set(database="file:" + quote(str(Path(path).resolve())),
                       query={**url.query, "mode": mode, "uri": "true"})
