"""Building and serving the API process."""
from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from services.api.app import create_app
from services.api.demo import ensure_demo
from shared.bootstrap import build_secret_box, build_store, build_transport
from shared.settings import Settings
from shared.store.db import session_factory


def build_api(settings: Settings) -> FastAPI:
    """Store migrated, transport connected, demo created when asked. Raises ConfigError on bad settings."""
    box = build_secret_box(settings)
    store = build_store(settings)
    transport, topology = build_transport(settings, name="api")
    if settings.demo:
        with session_factory(store)() as session:
            ensure_demo(session, settings.data_dir, box)
    return create_app(settings, transport, store=store, box=box, topology=topology)


def serve_api(app: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    uvicorn.run(app, host=host or settings.api_host, port=port if port is not None else settings.api_port,
                log_config=None, access_log=False)
