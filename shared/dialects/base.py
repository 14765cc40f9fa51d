"""What differs between database engines, in one place per engine.

Each engine module (``postgresql.py``, ``mysql.py``, ``sqlite.py``, ``mssql.py``)
defines a :class:`Dialect` subclass. Capabilities are class attributes (a small
table, not scattered ``if engine ==`` checks); behaviour is methods. The loader and
the extractor stay engine-neutral and call only what is declared here.

Two owners edit these modules: the EXTRACTION section (read-only sessions, result
column types, streaming cursors, temporary tables for ``@resultN``) and the LOADING
section (staging, bulk load, mode statements, error classification).
"""
from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa

from shared.types import Column


class Dialect:
    """Engine facts and engine-specific operations."""

    name: ClassVar[str] = "base"
    max_identifier_length: ClassVar[int] = 63
    transactional_ddl: ClassVar[bool] = False
    truncate_is_transactional: ClassVar[bool] = False

    def quote_identifier(self, sa_dialect: sa.Dialect, name: str) -> str:
        """Quote one identifier with the engine's own rules."""
        return sa_dialect.identifier_preparer.quote_identifier(name)

    def quote_table(self, sa_dialect: sa.Dialect, table: str) -> str:
        """Quote ``table`` or ``schema.table``."""
        return ".".join(self.quote_identifier(sa_dialect, part) for part in table.split("."))

    # ------------------------------------------------------------------ EXTRACTION
    # (owned by shared/extract; see that package)

    def describe_result(self, cursor_description: list, sample_rows: list[tuple]) -> list[Column]:
        """Portable columns of a result from its DB-API cursor description."""
        raise NotImplementedError

    # ------------------------------------------------------------------ LOADING
    # (owned by shared/load; see that package)
