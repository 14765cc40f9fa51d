"""Incremental jobs on the load side: rows re-read by ``lag`` must not be written twice.

With a key, insert_only skips a re-read row (its key is there) and upsert rewrites it with
the same values; without a key a re-read row would be a second copy, so such a load is
refused (rolled back) before anything is committed.
"""
from __future__ import annotations

from shared.errors import ValidationFailed


def check_overlap(watermark: dict | None, key: list[str] | None, *, table: str) -> None:
    """Raises ValidationFailed for an incremental run with a lag into a table without a key."""
    if watermark and watermark.get("lag") and not key:
        raise ValidationFailed(f"{table} has no primary key and the job sets no key_columns, but "
                               "incremental.lag re-reads rows: they would be written twice. Give the "
                               "destination a key (or key_columns), or remove the lag", [])


def state_json(watermark: dict | None) -> str | None:
    """The watermark as stored in ``datamig_state`` (None for a job that is not incremental)."""
    if not watermark:
        return None
    from shared.incremental import Watermark

    return Watermark(value=watermark.get("to"), kind=watermark.get("kind"), seen=list(watermark.get("seen") or [])).to_json()
