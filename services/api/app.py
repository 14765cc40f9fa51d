"""The API service: create_app(settings, transport, …) -> FastAPI."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request, Response

from services.api.deps import Runtime
from services.api.docs_offline import install_docs
from services.api.errors import install_error_handlers
from services.api.recorder import Recorder
from services.api.security import BodyLimit, principal
from services.api.routers import (audit, channels, checks, compare, executions, health, jobs, projects, schedule,
                                  watermark)
from services.api import web
from shared.metrics import exposition
from shared.alerts.delivery import Deliverer
from shared.alerts.settings import AlertSettings, load_alert_settings
from shared.secrets import SecretBox
from shared.settings import Settings
from shared.store.db import session_factory
from shared.topology import Topology
from shared.transport.base import Transport


def create_app(settings: Settings, transport: Transport, *, store: sa.Engine, box: SecretBox,
               topology: Topology | None = None, record_events: bool = True,
               alerts: AlertSettings | None = None) -> FastAPI:
    """The HTTP API. ``store`` must already be migrated; the recorder (and the alert delivery
    loop, which shares its process: see shared/alerts) runs while the app does."""
    topology = topology or Topology(settings.queue_prefix)
    alerts = alerts or load_alert_settings()
    runtime = Runtime(settings=settings, store=store, sessions=session_factory(store),
                      transport=transport, topology=topology, box=box, alerts=alerts,
                      public_url=alerts.link_base(api_host=settings.api_host, api_port=settings.api_port))
    recorder = Recorder(runtime.sessions, transport, topology, public_url=runtime.public_url,
                        retry_base_s=settings.retry_base_s, retry_max_s=settings.retry_max_s)
    deliverer = Deliverer(runtime.sessions, box=box, settings=alerts)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if record_events:
            recorder.start()
            if alerts.alert_delivery:
                deliverer.start()
        try:
            yield
        finally:
            deliverer.stop()
            recorder.stop()

    app = FastAPI(title="Semantico Data Migration", version="0.1.0", lifespan=lifespan,
                  description="Multi-step, cross-engine data migration jobs.",
                  docs_url=None, redoc_url=None)  # served without a CDN: install_docs below
    app.state.runtime = runtime
    app.state.recorder = recorder
    app.state.deliverer = deliverer
    install_error_handlers(app)
    install_docs(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    for module in (health, web):
        app.include_router(module.router)
    for module in (projects, checks, jobs, watermark, executions, schedule, audit, channels):
        app.include_router(module.router, dependencies=[Depends(principal)])
    app.include_router(compare.router, dependencies=[Depends(compare.read_only_route), Depends(principal)])

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if settings.metrics_auth:
            principal(request, _bearer_of(request))
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    return app


def _bearer_of(request: Request):  # type: ignore[no-untyped-def]
    from fastapi.security.utils import get_authorization_scheme_param
    from fastapi.security import HTTPAuthorizationCredentials

    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization", ""))
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if token else None
