"""SQLite: engine facts and engine-specific operations (see ``base.py``)."""
from __future__ import annotations

from shared.dialects.base import Dialect


class SQLiteDialect(Dialect):
    """SQLite."""

    name = "sqlite"
    max_identifier_length = 1024
    transactional_ddl = True
    truncate_is_transactional = True

    # --- EXTRACTION ---
    # (owned by shared/extract; methods added here by the extract engineer)

    # --- LOADING ---
    # (owned by shared/load)
