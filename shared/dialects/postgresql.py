"""PostgreSQL: engine facts and engine-specific operations (see ``base.py``)."""
from __future__ import annotations

from shared.dialects.base import Dialect


class PostgresDialect(Dialect):
    """PostgreSQL."""

    name = "postgresql"
    max_identifier_length = 63
    transactional_ddl = True
    truncate_is_transactional = True

    # --- EXTRACTION ---
    # (owned by shared/extract; methods added here by the extract engineer)

    # --- LOADING ---
    # (owned by shared/load)
