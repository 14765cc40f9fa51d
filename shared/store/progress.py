"""Progress of a running execution: its phase, the source's row estimate and an ETA.

``apply_progress`` is called by the recorder for each event; ``progress_out`` adds the
public fields to an execution (``phase``, ``phase_label``, ``rows_estimate``,
``estimate_source``, ``eta_seconds``).
"""
from __future__ import annotations

from typing import Any

from shared.phases import LABELS, rank
from shared.messages import Event

MOVING = ("extracting", "loading")  # the phases whose speed the ETA extrapolates


def apply_progress(row: Any, ev: Event) -> None:
    """Keep the furthest phase reached and the first estimate received."""
    phase = getattr(ev, "phase", "") or ""
    if phase and rank(phase) > rank(row.phase):
        row.phase = phase
    estimate = getattr(ev, "estimate", None) or {}
    if estimate.get("rows") and row.rows_estimate is None:
        row.rows_estimate = int(estimate["rows"])
        row.estimate_source = str(estimate.get("source", ""))[:200] or None


def eta_seconds(*, status: str, phase: str | None, rows_read: int, estimate: int | None,
                seconds: float | None) -> float | None:
    """Seconds left at the rate so far, or None (not running, no estimate, no rate, past it)."""
    if status != "running" or phase not in MOVING or not estimate or not seconds or rows_read <= 0:
        return None
    if rows_read >= estimate:
        return None
    return round((estimate - rows_read) / (rows_read / seconds), 1)


def progress_out(row: Any, seconds: float | None) -> dict:
    phase = row.phase
    return {"phase": phase, "phase_label": LABELS.get(phase or "", None),
            "rows_estimate": row.rows_estimate, "estimate_source": row.estimate_source,
            "eta_seconds": eta_seconds(status=row.status, phase=phase, rows_read=row.rows_read or 0,
                                       estimate=row.rows_estimate, seconds=seconds)}
