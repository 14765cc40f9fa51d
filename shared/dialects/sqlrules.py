"""The lexical rules of an engine's SQL, as data the tokenizer reads (``shared/extract/tokenizer.py``).

Each source side declares its :class:`SqlRules` (``SourceSide.sql_rules``); the flavor
``generic`` (a project whose engine is unknown) is the union that is safe for finding
``@resultN`` references. :func:`rules_for` maps a flavor name to its rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class SqlRules:
    """What a tokenizer must know to tell code from strings, comments and quoted names."""

    nested_comments: bool = False  # ``/* /* */ */`` nests (PostgreSQL)
    dollar_quotes: bool = False  # ``$tag$ … $tag$`` strings (PostgreSQL)
    bracket_identifiers: bool = False  # ``[name]`` (SQL Server, SQLite)
    backslash_escapes: bool = False  # ``\\`` escapes in every string (MySQL); else only in ``E'…'``
    double_quote_strings: bool = False  # ``"…"`` is a string, not a name (MySQL)
    hash_comments: bool = False  # ``#`` opens a line comment, ``--`` only when followed by a space (MySQL)
    executable_comments: bool = False  # ``/*! … */`` is code: only its markers are comments (MySQL)
    digit_identifiers: bool = False  # names may start with a digit or ``$`` (MySQL)
    select_into_writes: bool = False  # ``SELECT … INTO OUTFILE / @var`` writes outside the result (MySQL)


GENERIC = SqlRules(nested_comments=True, dollar_quotes=True, bracket_identifiers=True)


@lru_cache(maxsize=None)
def rules_for(flavor: str) -> SqlRules:
    """The rules of a flavor: an engine's name (its dialect's ``sql_rules``) or ``generic``."""
    from shared.dialects import engine_key, get_dialect

    return get_dialect(flavor).sql_rules if flavor != "generic" and engine_key(flavor) else GENERIC
