"""Execution phases: what a running execution is doing now, published by the workers.

The workers call :func:`enter` once per phase change (one line each in their code); the
recorder keeps the furthest phase reached (events from the extractor and the loader can
arrive out of order), and the page shows it with the rows moved, rows/s and an ETA.

Order: validating → extracting (the extractor reads; the loader starts) → clearing
(truncate_load empties the table inside the transaction) → loading (extracting/loading:
both run at once) → applying (the mode's last statements: sync_delete's deletes) →
verifying (a job's verify check, when it has one) → committing.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

PHASES = ("validating", "extracting", "clearing", "loading", "applying", "verifying", "committing")
LABELS = {"validating": "Validating", "extracting": "Extracting/loading", "clearing": "Clearing the destination",
          "loading": "Extracting/loading", "applying": "Applying", "verifying": "Verifying",
          "committing": "Committing"}


def rank(phase: str | None) -> int:
    """Position of a phase in the order (-1 for none or an unknown name)."""
    return PHASES.index(phase) if phase in PHASES else -1


def enter(ctx: Any, phase: str, **fields: Any) -> None:
    """Publish that the execution entered ``phase`` (a progress event); never raises.

    ``fields`` are extra Event fields, e.g. ``estimate={"rows": 1000, "source": "…"}``.
    """
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}")
    try:
        ctx.publish("progress", phase=phase, **fields)
    except Exception:  # noqa: BLE001 - progress is informative: a lost event must not fail the execution
        log.warning("execution %s: phase %s not published", getattr(ctx, "execution_id", "?"), phase, exc_info=True)


def load_start(mode: str) -> str:
    """The loader's first phase: truncate_load clears the table first."""
    return "clearing" if mode == "truncate_load" else "loading"
