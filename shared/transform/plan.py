"""The transform's SQL as a plan: which ``@resultN`` it reads, which one may stream.

A job's ``transform`` is one query in DuckDB's SQL (close to PostgreSQL's) over the
results of its steps, written ``@resultN``. Each referenced result becomes a DuckDB
relation named ``dm_resultN``. When the transform reads only the last step's result,
and only once, that result is streamed through DuckDB (a projection or filter then never
holds the whole result); every other referenced result is materialised first into
DuckDB's own storage, which spills to a temporary directory when it outgrows memory.
Pure functions: no database is asked here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import SourceError
from shared.extract.tokenizer import find_references, first_word, rewrite_references, statement_count, strip_statement
from shared.jobspec import StepSpec

LABEL = "the transform"
FLAVOR = "postgresql"  # DuckDB's lexer: '' and E'' strings, $$ quotes, "identifiers", -- and /* */ comments
RELATION = "dm_result{n}"
_RELATION_RE = re.compile(r'"?\bdm_result(\d+)\b"?')
QUERY_STARTS = frozenset({"select", "with", "values", "table", "from", "("})


class TransformError(SourceError):
    """The transform cannot run: its SQL, its references or its limits (names the transform)."""

    kind = "transform"

    def __init__(self, message: str, *, transient: bool = False, labelled: bool = False) -> None:
        self.detail = message
        super().__init__(message if labelled else f"{LABEL}: {message}")
        self.transient = transient


@dataclass(frozen=True)
class TransformPlan:
    """What the transform reads: ``streamed`` (a step read once, as a stream) and ``materialised``."""

    references: tuple[int, ...]
    streamed: int | None
    materialised: tuple[int, ...]


def normalise(transform: str | None) -> str | None:
    """``None`` for no transform (null, empty or only whitespace), else the SQL as written."""
    if transform is None or not transform.strip():
        return None
    return transform


def transform_problems(transform: str, steps: list[StepSpec]) -> list[str]:
    """Messages naming the transform for what stops it before any database is asked."""
    count = statement_count(transform, flavor=FLAVOR)
    if count != 1:
        return [f"{LABEL}: holds {count} statements; the transform is exactly one query"]
    word = first_word(transform, flavor=FLAVOR)
    if word not in QUERY_STARTS:
        return [f"{LABEL}: starts with {word.upper()!r}; the transform must be a query (SELECT, WITH, …) "
                "over @result1..@result" f"{len(steps)}"]
    refs = find_references(transform, flavor=FLAVOR)
    if not refs:
        return [f"{LABEL}: reads no step result; use @result1..@result{len(steps)} as tables"]
    return [f"{LABEL}: @result{n} refers to a missing step (the job has {len(steps)} steps)"
            for n in dict.fromkeys(refs) if not 1 <= n <= len(steps)]


def plan_transform(transform: str, steps: list[StepSpec]) -> TransformPlan:
    """The plan for a transform without problems (call :func:`transform_problems` first)."""
    refs = find_references(transform, flavor=FLAVOR)
    distinct = tuple(sorted(set(refs)))
    last = len(steps)
    if distinct == (last,) and len(refs) == 1:
        return TransformPlan(references=distinct, streamed=last, materialised=())
    return TransformPlan(references=distinct, streamed=None, materialised=distinct)


def engine_sql(transform: str) -> str:
    """The transform as DuckDB runs it: ``@resultN`` → ``"dm_resultN"``, trailing ``;`` dropped."""
    refs = set(find_references(transform, flavor=FLAVOR))
    names = {n: f'"{RELATION.format(n=n)}"' for n in refs}
    return rewrite_references(strip_statement(transform, flavor=FLAVOR), names, flavor=FLAVOR)


def user_words(text: str) -> str:
    """A DuckDB message in the user's words: ``dm_resultN`` back to ``@resultN``."""
    return _RELATION_RE.sub(r"@result\1", text)
