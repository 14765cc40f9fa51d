"""API tokens: created random, stored as SHA-256, shown once.

Tokens are 32 random bytes (url-safe text, prefixed ``dm_``); with that much entropy a
fast hash is enough (no password-style stretching needed), and lookups stay O(1).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.store.models import TokenRow, utcnow

Role = Literal["viewer", "editor"]
ROLES: tuple[str, ...] = ("viewer", "editor")
TOKEN_PREFIX = "dm_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name and role."""

    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(session: Session, *, name: str, role: str) -> tuple[TokenRow, str]:
    """Store a new token; returns the row and the token text (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    token = new_token()
    row = TokenRow(name=name, role=role, token_hash=hash_token(token), prefix=token[:10])
    session.add(row)
    session.flush()
    return row, token


def authenticate(session: Session, token: str, *, admin_token: str = "") -> Principal | None:
    """The principal for a presented token, or None. ``admin_token`` (DM_ADMIN_TOKEN) is an editor."""
    if admin_token and hmac.compare_digest(hash_token(token), hash_token(admin_token)):
        return Principal(name="admin (DM_ADMIN_TOKEN)", role="editor")
    row = session.scalar(sa.select(TokenRow).where(TokenRow.token_hash == hash_token(token),
                                                   TokenRow.revoked_at.is_(None)))
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
        session.commit()
    return Principal(name=row.name, role=row.role)


def active_token_count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(TokenRow).where(TokenRow.revoked_at.is_(None))) or 0


def revoke_token(session: Session, ident: str) -> int:
    """Revoke by id, name or prefix; returns how many were revoked."""
    q = sa.update(TokenRow).where(TokenRow.revoked_at.is_(None))
    cond = [TokenRow.name == ident, TokenRow.prefix == ident]
    if ident.isdigit():
        cond.append(TokenRow.id == int(ident))
    result = session.execute(q.where(sa.or_(*cond)).values(revoked_at=utcnow()))
    return result.rowcount
