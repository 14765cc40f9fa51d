"""/healthz: readiness of the API and what it depends on."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.api.deps import RuntimeDep
from services.api.schemas import HealthOut

router = APIRouter(tags=["health"])
VERSION = "0.1.0"


@router.get("/healthz", response_model=HealthOut)
def healthz(rt: RuntimeDep) -> JSONResponse:
    """200 when the metadata store and the broker answer, 503 otherwise (body says which)."""
    try:
        with rt.store.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        store_ok = True
    except Exception:  # noqa: BLE001 - health reports, never raises
        store_ok = False
    broker_ok = rt.transport.ping()
    ok = store_ok and broker_ok
    body = {"status": "ok" if ok else "degraded", "metadata_store": store_ok, "broker": broker_ok, "version": VERSION}
    return JSONResponse(body, status_code=200 if ok else 503)
