"""Test-only fault points: with ``DM_TEST_FAULT=<name>`` a process exits at once, like a
``kill -9``, when it reaches the point of that name. Unset in production; the fault tests
use it where a real kill cannot be timed (e.g. between a COMMIT and the event after it)."""
from __future__ import annotations

import logging
import os

log = logging.getLogger("datamig.faults")
FAULT_ENV = "DM_TEST_FAULT"


def fault_point(name: str) -> None:
    """Exit the process now (status 137, no cleanup) when ``DM_TEST_FAULT`` names this point."""
    if os.environ.get(FAULT_ENV) == name:
        log.error("DM_TEST_FAULT=%s: exiting here", name)
        logging.shutdown()
        os._exit(137)
