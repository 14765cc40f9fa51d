"""MySQL and MariaDB: engine facts and engine-specific operations (see ``base.py``)."""
from __future__ import annotations

from shared.dialects.base import Dialect


class MySQLDialect(Dialect):
    """MySQL and MariaDB."""

    name = "mysql"
    max_identifier_length = 64
    transactional_ddl = False
    truncate_is_transactional = False

    # --- EXTRACTION ---
    # (owned by shared/extract; methods added here by the extract engineer)

    # --- LOADING ---
    # (owned by shared/load)
