"""Property-based fuzzing of the OpenAPI schema (schemathesis): no input gives a 5xx.

Generated strings include NUL characters (schemathesis' ``allow_x00``). The SQLite store here
would take them, but PostgreSQL — the production metadata store — refuses them, so this
store refuses them too: a NUL that reaches it is a 500, as it would be in production.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from services.api.app import create_app
from shared.bootstrap import build_secret_box, build_store, build_transport
from tests.unit.api_fixtures import AUTH, make_settings, refuse_nul_like_postgresql

EXAMPLES_PER_OPERATION = 20


def _app():  # type: ignore[no-untyped-def]
    config = make_settings(Path(tempfile.mkdtemp(prefix="dm-fuzz-")))
    transport, topology = build_transport(config, name="fuzz")
    store = build_store(config)
    refuse_nul_like_postgresql(store)
    return create_app(config, transport, store=store, box=build_secret_box(config),
                      topology=topology, record_events=False)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_with_a_5xx(case) -> None:  # type: ignore[no-untyped-def]
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
