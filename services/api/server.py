"""Building and serving the API process."""
from __future__ import annotations

import sys

import uvicorn
from sqlalchemy.orm import Session
from fastapi import FastAPI

from services.api.app import create_app
from services.api.demo import ensure_demo
from shared.bootstrap import build_secret_box, build_store, build_transport
from shared.settings import Settings
from shared.store.db import session_factory
from shared.store.projects import encrypt_stored_secrets
from shared.store.tokens import active_token_count, create_token


def build_api(settings: Settings) -> FastAPI:
    """Store migrated, transport connected, demo created when asked. Raises ConfigError on bad settings."""
    box = build_secret_box(settings)
    store = build_store(settings)
    transport, topology = build_transport(settings, name="api")
    with session_factory(store)() as session:
        if settings.demo:
            ensure_demo(session, settings.data_dir, box)
        ensure_first_token(session, settings)
        encrypt_stored_secrets(session, box)
    return create_app(settings, transport, store=store, box=box, topology=topology)


def ensure_first_token(session: Session, settings: Settings) -> None:
    """With no DM_ADMIN_TOKEN and no token yet, create an editor token and print it once."""
    if settings.admin_token or active_token_count(session):
        return
    _, token = create_token(session, name="first editor token", role="editor")
    session.commit()
    print(f"\n  datamig: created the first API token (editor). It is shown only now:\n\n    {token}\n\n"
          "  Use it as 'Authorization: Bearer <token>', in the web page, or as DM_API_TOKEN for the CLI.\n"
          "  Manage tokens with: datamig token create|list|revoke\n", file=sys.stderr, flush=True)


def serve_api(app: FastAPI, settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    uvicorn.run(app, host=host or settings.api_host, port=port if port is not None else settings.api_port,
                log_config=None, access_log=False)
