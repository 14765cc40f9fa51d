"""Multi-step extraction: ``@resultN`` references, planning, streaming, preview, validation, flow.

Public API (what the extractor service and the API call):

- :func:`find_references`, :func:`check_references` — the tokenizer's view of a step;
- :class:`Extraction` — run a job's steps, stream the last result in batches, cancel;
- :func:`preview` — first rows of each step, read-only and bounded in time;
- :func:`validate_sources` — reachability, references, every step parses and plans;
- :func:`flow` — steps as nodes, references as edges.

Privileges a source user needs: SELECT on what the steps read, and the right to
create temporary tables (PostgreSQL ``TEMPORARY`` on the database, MySQL ``CREATE
TEMPORARY TABLES``) on a project whose step joins another project's result.
Read-only sessions: PostgreSQL ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``
plus ``SET TRANSACTION READ ONLY``; MySQL/MariaDB ``SET SESSION TRANSACTION READ ONLY`` and
``START TRANSACTION READ ONLY``; SQLite ``PRAGMA query_only``; SQL Server has no
session read-only switch: steps run in a transaction that is always rolled back, so use
a login with ``db_datareader`` only. Every step must be one statement starting with
SELECT, WITH, VALUES, TABLE or ``(``.
"""
from __future__ import annotations

from shared.extract.flow import flow
from shared.extract.planner import check_references
from shared.extract.preview import preview, validate_sources
from shared.extract.runner import Extraction
from shared.extract.tokenizer import find_references

__all__ = ["Extraction", "check_references", "find_references", "flow", "preview", "validate_sources"]
