"""Dispatch without waiting for the next poll.

The API queues a manual execution in the metadata store and then announces it on the events
exchange (an Event of kind ``queued``). Every scheduler replica listens to that exchange
already (:mod:`services.scheduler.liveness`) and wakes its loop at once, so execute →
dispatched no longer waits up to ``DM_POLL_S``. The announcement is only a hint: the
store is the truth, the replica that wins ``FOR UPDATE SKIP LOCKED`` dispatches, and a lost
announcement (broker hiccup) costs one poll interval, never the execution. The recorder
ignores ``queued`` events (nothing in history changes).
"""
from __future__ import annotations

import logging

from shared.messages import Event
from shared.topology import Topology
from shared.transport.base import Transport

log = logging.getLogger(__name__)
QUEUED = "queued"


def announce_queued(transport: Transport, topology: Topology, *, execution_id: int, job_id: int) -> None:
    """Tell the schedulers that ``execution_id`` waits; never raises (polling is the fallback)."""
    event = Event(execution_id=execution_id, job_id=job_id, kind=QUEUED, service="api")
    try:
        transport.publish(event.encode(), exchange=topology.events, routing_key=f"{QUEUED}.{execution_id}",
                          persistent=False, timeout_s=2.0)
    except Exception:  # noqa: BLE001 - the scheduler's poll dispatches it anyway
        log.warning("could not announce execution %s; it is dispatched at the next poll", execution_id,
                    exc_info=True)
