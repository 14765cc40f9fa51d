"""A small SQL tokenizer that finds ``@resultN`` references and statement boundaries.

It knows just enough SQL to tell a reference from text that only looks like one:
string literals (``'..'`` with ``''``, ``E'..'`` and MySQL backslash escapes,
PostgreSQL ``$tag$..$tag$`` dollar quotes), comments (``--``, nested ``/* */``, MySQL
``#``), and quoted identifiers (``"..."``, `````...`````, ``[...]``). A reference is
``@result`` followed by digits, case-insensitive, not glued to a longer identifier:
``@result12`` is step 12, never step 1; ``@result1x`` and ``x@result1`` are not
references.

Identifiers follow each engine's lexer: PostgreSQL takes any non-ASCII character (also
above U+FFFF) as a letter and ``$`` after the first character, so ``a😀$$`` is one
identifier, not the start of a dollar quote; MySQL/MariaDB also start identifiers with
``$`` or a digit. MySQL/MariaDB executable comments (``/*! … */``, ``/*!50100 … */``,
``/*M! … */``) are code for those engines: only their markers are comments, the text
inside is tokenized like any other SQL (the ``mysql`` flavor). Other flavors keep them
as comments.

This tokenizer finds references and gives early, friendly messages; it is not what
keeps sources read-only (the database is: see shared/extract/session.py).

``flavor`` selects an engine's rules (``postgresql``, ``mysql``, ``mssql``, ``sqlite``: each
dialect's :class:`~shared.dialects.sqlrules.SqlRules`); the default ``generic`` is the union that
is safe for finding references.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shared.dialects.sqlrules import rules_for

Kind = Literal["ws", "comment", "string", "ident", "qident", "ref", "watermark", "semicolon", "other"]

_REF_RE = re.compile(r"@result([0-9]+)(?![A-Za-z0-9_$@])", re.I)
_WATERMARK_RE = re.compile(r"@watermark(?![A-Za-z0-9_$@])", re.I)  # incremental jobs (shared.incremental)
_WORD_RE = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_MYSQL_WORD_RE = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]*[A-Za-z_$\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_WS_RE = re.compile(r"\s+")
_DOLLAR_TAG_RE = re.compile(r"\$([A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_OTHER_RE = re.compile(r"[^\s'\"`\[$@;#/*\-A-Za-z_\u0080-\U0010ffff]+|.", re.S)
_EXEC_COMMENT_RE = re.compile(r"/\*M?![0-9]{0,6}")
_CLOSERS = {'"': '"', "`": "`", "[": "]"}


@dataclass(frozen=True)
class Token:
    kind: Kind
    start: int
    end: int
    text: str
    ref: int | None = None  # N for a ``ref`` token


def _glued(prev: str) -> bool:
    """True when ``prev`` makes a following ``@`` part of a longer name (``x@result1``, ``@@result1``)."""
    return prev == "@" or prev == "$" or prev == "_" or prev.isalnum()


class _Scanner:
    def __init__(self, sql: str, flavor: str) -> None:
        self.sql, self.rules, self.pos = sql, rules_for(flavor), 0
        self.in_exec_comment = False  # inside a MySQL ``/*! … */``: its text is code

    def quoted(self, start: int, close: str, *, backslash: bool) -> int:
        """End of a quoted run opened at ``start`` (doubling the closer escapes it)."""
        sql, i, n = self.sql, start + 1, len(self.sql)
        while i < n:
            c = sql[i]
            if backslash and c == "\\":
                i += 2
                continue
            if c == close:
                if i + 1 < n and sql[i + 1] == close:
                    i += 2
                    continue
                return i + 1
            i += 1
        return n  # unterminated: the rest is the literal

    def block_comment(self, start: int) -> int:
        sql, i, depth, n = self.sql, start + 2, 1, len(self.sql)
        nested = self.rules.nested_comments
        while i < n:
            if sql.startswith("*/", i):
                depth -= 1
                i += 2
                if depth == 0 or not nested:
                    return i
            elif nested and sql.startswith("/*", i):
                depth += 1
                i += 2
            else:
                i += 1
        return n

    def dollar(self, start: int) -> int | None:
        m = _DOLLAR_TAG_RE.match(self.sql, start)
        if not m:
            return None
        end = self.sql.find(m.group(0), m.end())
        return len(self.sql) if end < 0 else end + len(m.group(0))

    def line_comment_starts(self, i: int) -> bool:
        sql = self.sql
        if sql.startswith("--", i):
            # MySQL needs whitespace (or the end) after "--"; elsewhere any "--" opens a comment.
            return not self.rules.hash_comments or i + 2 >= len(sql) or sql[i + 2].isspace()
        return sql[i] == "#" and self.rules.hash_comments

    def next(self, prev_word: str | None) -> Token:
        sql, i = self.sql, self.pos
        c = sql[i]
        kind: Kind = "other"
        ref = None
        if c.isspace():
            end, kind = _WS_RE.match(sql, i).end(), "ws"  # type: ignore[union-attr]
        elif self.line_comment_starts(i):
            nl = sql.find("\n", i)
            end, kind = (len(sql) if nl < 0 else nl), "comment"
        elif self.rules.executable_comments and not self.in_exec_comment and (m0 := _EXEC_COMMENT_RE.match(sql, i)):
            end, kind, self.in_exec_comment = m0.end(), "comment", True  # the marker only
        elif self.in_exec_comment and sql.startswith("*/", i):
            end, kind, self.in_exec_comment = i + 2, "comment", False
        elif sql.startswith("/*", i):
            end, kind = self.block_comment(i), "comment"
        elif c == "'":
            backslash = self.rules.backslash_escapes or (prev_word is not None and prev_word.lower() == "e")
            end, kind = self.quoted(i, "'", backslash=backslash), "string"
        elif c == '"' or c == "`" or (c == "[" and self.rules.bracket_identifiers):
            dq_string = self.rules.double_quote_strings and c == '"'
            end = self.quoted(i, _CLOSERS[c], backslash=dq_string)
            kind = "string" if dq_string else "qident"
        elif c == "$" and self.rules.dollar_quotes and (d := self.dollar(i)) is not None:
            end, kind = d, "string"
        elif c == "@" and (m := _REF_RE.match(sql, i)) and not (i > 0 and _glued(sql[i - 1])):
            end, kind, ref = m.end(), "ref", int(m.group(1))
        elif c == "@" and (m := _WATERMARK_RE.match(sql, i)) and not (i > 0 and _glued(sql[i - 1])):
            end, kind = m.end(), "watermark"
        elif c == ";":
            end, kind = i + 1, "semicolon"
        elif m2 := (_MYSQL_WORD_RE if self.rules.digit_identifiers else _WORD_RE).match(sql, i):
            end, kind = m2.end(), "ident"
        else:
            end = _OTHER_RE.match(sql, i).end()  # type: ignore[union-attr]
        self.pos = end
        return Token(kind, i, end, sql[i:end], ref)


def tokenize(sql: str, *, flavor: str = "generic") -> list[Token]:
    """Split ``sql`` into tokens whose texts concatenate back to ``sql``."""
    scanner = _Scanner(sql, flavor)
    tokens: list[Token] = []
    prev_word: str | None = None
    while scanner.pos < len(sql):
        tok = scanner.next(prev_word if tokens and tokens[-1].kind == "ident" else None)
        prev_word = tok.text if tok.kind == "ident" else None
        tokens.append(tok)
    return tokens


def find_references(sql: str, *, flavor: str = "generic") -> list[int]:
    """The N of each ``@resultN`` in ``sql``, in order of appearance (repeats kept)."""
    return [t.ref for t in tokenize(sql, flavor=flavor) if t.kind == "ref" and t.ref is not None]


def has_watermark(sql: str, *, flavor: str = "generic") -> bool:
    """Whether ``sql`` uses ``@watermark`` (outside strings, comments and quoted identifiers)."""
    return any(t.kind == "watermark" for t in tokenize(sql, flavor=flavor))


def rewrite_references(sql: str, names: dict[int, str], *, flavor: str = "generic",
                       watermark: str | None = None) -> str:
    """``sql`` with each ``@resultN`` replaced by ``names[N]`` (already quoted SQL text) and each
    ``@watermark`` by ``watermark`` (the engine's reference to the bound value, never the value).

    Raises KeyError for a reference missing from ``names`` or a ``@watermark`` without ``watermark``.
    """
    def text(t: Token) -> str:
        if t.kind == "ref" and t.ref is not None:
            return names[t.ref]
        if t.kind == "watermark":
            if watermark is None:
                raise KeyError("@watermark")
            return watermark
        return t.text

    return "".join(text(t) for t in tokenize(sql, flavor=flavor))


def _significant(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind not in ("ws", "comment")]


def strip_statement(sql: str, *, flavor: str = "generic") -> str:
    """``sql`` without trailing semicolons, whitespace and comments (safe to wrap in parentheses)."""
    tokens = tokenize(sql, flavor=flavor)
    sig = [t for t in _significant(tokens) if t.kind != "semicolon"]
    return sql[: sig[-1].end] if sig else ""


def statement_count(sql: str, *, flavor: str = "generic") -> int:
    """How many statements ``sql`` holds (empty statements between semicolons are not counted)."""
    count, pending = 0, False
    for t in _significant(tokenize(sql, flavor=flavor)):
        if t.kind == "semicolon":
            count, pending = count + pending, False
        else:
            pending = True
    return count + pending


def split_leading_with(sql: str, *, flavor: str = "generic") -> tuple[str, str] | None:
    """``(head, rest)`` when ``sql`` starts with ``WITH [RECURSIVE]``: head ends after the keyword(s).

    Lets a caller add its own CTEs in front of the statement's own (one WITH list).
    """
    sig = _significant(tokenize(sql, flavor=flavor))
    if not sig or sig[0].kind != "ident" or sig[0].text.lower() != "with":
        return None
    cut = sig[0].end
    if len(sig) > 1 and sig[1].kind == "ident" and sig[1].text.lower() == "recursive":
        cut = sig[1].end
    return sql[:cut], sql[cut:]


def first_word(sql: str, *, flavor: str = "generic") -> str:
    """The first significant token in lower case (``select``, ``with``, ``(``…), or ``""``."""
    sig = _significant(tokenize(sql, flavor=flavor))
    return sig[0].text.lower() if sig else ""


def into_target(sql: str, *, flavor: str = "generic") -> str | None:
    """What a MySQL/MariaDB ``SELECT … INTO`` writes to (``OUTFILE``, ``DUMPFILE`` or ``@var``), or None."""
    sig = _significant(tokenize(sql, flavor=flavor))
    for t, nxt in zip(sig, sig[1:]):
        if t.kind == "ident" and t.text.lower() == "into":
            if nxt.kind == "ident" and nxt.text.lower() in ("outfile", "dumpfile"):
                return nxt.text.upper()
            if nxt.text.startswith("@"):
                return "@variable"
    return None
