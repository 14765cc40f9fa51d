"""Which failures are retried, and how long to wait: exponential backoff with full jitter."""
from __future__ import annotations

import random

DEFAULT_RETRY_BASE_S = 10.0
DEFAULT_RETRY_MAX_S = 600.0
RETRIED_STATUSES = frozenset({"failed", "timed_out"})


def should_retry(*, status: str, transient: bool, attempt: int, max_retries: int) -> bool:
    """Retry failed/timed-out executions whose error can heal, while attempts remain.

    ``attempt`` counts from 1 (the first run); ``max_retries`` retries follow it at most.
    """
    return status in RETRIED_STATUSES and transient and attempt <= max_retries


def backoff_s(attempt: int, *, base_s: float = DEFAULT_RETRY_BASE_S, max_s: float = DEFAULT_RETRY_MAX_S,
              rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1 = first retry): min(cap, base·2^(n-1)), half of it jittered."""
    ceiling = min(max_s, base_s * 2 ** max(0, attempt - 1))
    r = (rng or random).random()
    return ceiling / 2 + r * ceiling / 2
