"""What differs between database engines, in one place per engine.

A dialect has two focused sides and a small core they share:

- :class:`~shared.dialects.source_side.SourceSide` — what the extractor calls (read-only
  sessions, result types, streaming, bulk export, temporary tables for ``@resultN``);
- :class:`~shared.dialects.destination_side.DestinationSide` — what the loader calls (THE load
  transaction, staging, bulk load, mode statements, row isolation, row errors);
- :class:`~shared.dialects.core.DialectCore` — name, quoting, connecting, row locks, and
  ``classify(exc)`` (transient or permanent, by SQLSTATE / error number).

Each engine has ``<engine>_source.py`` and ``<engine>_destination.py`` (the sides) and
``<engine>.py``, whose :class:`Dialect` subclass is both. Capabilities are class attributes
(a small table read by the callers, never ``if engine ==`` checks); behaviour is methods.
Code that only reads types its dialect as ``SourceSide``; code that only writes, as
``DestinationSide``; :func:`shared.dialects.get_dialect` gives the whole :class:`Dialect`.
"""
from __future__ import annotations

from shared.dialects.destination_side import DestinationSide
from shared.dialects.source_side import SourceSide


class Dialect(SourceSide, DestinationSide):
    """Engine facts and engine-specific operations: both sides of one engine."""


__all__ = ["DestinationSide", "Dialect", "SourceSide"]
