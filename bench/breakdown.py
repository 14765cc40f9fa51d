"""Where a case's time goes, from the services' own metrics (``datamig_phase_seconds``).

The runner scrapes each worker's ``/metrics`` before and after a case; the difference of the
histogram sums per (service, phase) is that case's time in each phase. Phases are exclusive
(:func:`shared.metrics.phase`), so a service's phases add up to its busy time; extractor and
loader overlap in time (they stream), so the two services' totals are not added together.
``dispatch`` (queued → started, from the execution's timestamps) is the scheduler's part.
"""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import PHASE_NAMES

METRIC = "datamig_phase_seconds"
SERVICES = ("extractor", "loader")

Sums = dict[tuple[str, str], float]  # (service, phase) -> seconds


def parse(text: str) -> Sums:
    """The ``datamig_phase_seconds`` sums in a Prometheus text exposition, summed over modes."""
    out: Sums = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            if sample.name == METRIC + "_sum":
                key = (sample.labels.get("service", ""), sample.labels.get("phase", ""))
                out[key] = out.get(key, 0.0) + sample.value
    return out


def delta(before: Sums, after: Sums) -> Sums:
    """Seconds per (service, phase) between two scrapes (counters only grow; a restart shows as 0)."""
    return {k: round(max(0.0, v - before.get(k, 0.0)), 3) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def as_json(sums: Sums) -> dict[str, dict[str, float]]:
    """``{service: {phase: seconds}}`` in phase order."""
    out: dict[str, dict[str, float]] = {}
    for service in SERVICES:
        phases = {p: sums[(service, p)] for p in PHASE_NAMES if (service, p) in sums}
        if phases:
            out[service] = phases
    return out


def render(rows: list[tuple[str, dict[str, dict[str, float]], float, float | None]]) -> str:
    """One line per case and service: seconds per phase, the service's total, the case's wall time.

    ``rows``: (case, {service: {phase: seconds}}, wall seconds, dispatch seconds or None).
    """
    head = f"{'case':26} {'service':9} " + " ".join(f"{p:>9}" for p in PHASE_NAMES) + f" {'busy':>7} {'wall':>6}"
    lines = ["phase breakdown (seconds, from datamig_phase_seconds; exclusive per service):", head]
    for case, phases, wall, dispatch in rows:
        for service in SERVICES:
            values = phases.get(service, {})
            cells = " ".join(f"{values[p]:9.2f}" if p in values else f"{'-':>9}" for p in PHASE_NAMES)
            lines.append(f"{case:26} {service:9} {cells} {sum(values.values()):7.2f} {wall:6.1f}")
        if dispatch is not None:
            lines.append(f"{case:26} {'dispatch':9} queued -> started {dispatch:.2f} s")
    return "\n".join(lines)
