"""What every route needs, built once in create_app and reached through Annotated aliases."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from shared.alerts.settings import AlertSettings
from shared.connections import ProjectSpec, sqlite_location_error
from shared.secrets import SecretBox
from shared.settings import Settings
from shared.topology import Topology
from shared.transport.base import Transport


@dataclass
class Runtime:
    settings: Settings
    store: sa.Engine
    sessions: sessionmaker[Session]
    transport: Transport
    topology: Topology
    box: SecretBox
    alerts: AlertSettings = field(default_factory=AlertSettings)
    public_url: str = ""  # base of links to the web page (alerts)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.runtime.sessions() as session:
        yield session


MAX_ID = 2**31 - 1  # ids are 32-bit integers in every metadata store
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]


def check_sqlite_location(spec: ProjectSpec, rt: Runtime) -> None:
    """422 naming ``database``/``url`` when a SQLite project's file is outside DM_SQLITE_ROOT."""
    from services.api.errors import FieldErrors, field_error

    problem = sqlite_location_error(spec, root=rt.settings.sqlite_root_dir())
    if problem:
        raise FieldErrors([field_error(["body", problem[0]], problem[1])])
