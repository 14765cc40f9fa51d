"""HMAC-SHA256 signatures of webhook bodies (GitHub's form: ``sha256=<hex>``).

The receiver recomputes ``hmac_sha256(secret, raw body)`` and compares in constant time;
the body carries ``idempotency_key`` and ``created_at``, so a replay is recognisable.
"""
from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Datamig-Signature-256"
EVENT_HEADER = "X-Datamig-Event"
KEY_HEADER = "Idempotency-Key"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body``."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant-time)."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body), header)
