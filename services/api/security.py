"""Authentication (bearer tokens, roles), the audit trail, and request size limits.

Every ``/api`` route needs a token: ``viewer`` may read (GET), ``editor`` may also
change and execute. The token is looked up by its SHA-256; ``DM_ADMIN_TOKEN`` is a
bootstrap editor token that is never stored.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse

from services.api.deps import get_runtime
from shared.store.models import AuditRow
from shared.store.tokens import Principal, authenticate

_CLOSE = {"Connection": "close"}  # the rest of a refused body is not read: the connection ends with the answer
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False, description="A token from `datamig token create` or DM_ADMIN_TOKEN")


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The caller, checked against the route's need: reads need viewer, writes editor.

    Raises HTTPException 401 (no or unknown token) or 403 (role too low)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})
    rt = get_runtime(request)
    with rt.sessions() as session:
        who = authenticate(session, credentials.credentials, admin_token=rt.settings.admin_token)
    if who is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    needed = "viewer" if request.method in READ_METHODS or getattr(request.state, "read_only", False) else "editor"
    if not who.can(needed):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {who.role} role may not do this; an {needed} token is needed")
    request.state.principal = who
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]


def audit(session: Session, who: Principal, action: str, *, job_id: int | None = None,
          project_id: int | None = None, execution_id: int | None = None, **details: Any) -> None:
    """Add an audit entry to the session (committed with the change it describes)."""
    session.add(AuditRow(actor=who.name, action=action, job_id=job_id, project_id=project_id,
                         execution_id=execution_id, details=details))


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413, counting while they stream.

    A pure ASGI middleware, outside authentication: a declared ``Content-Length`` over the
    limit is refused before anything is read; a body without one (chunked) is counted as
    its chunks arrive and refused at the first byte over the limit, so it is never held
    whole in memory.
    """

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large()(scope, receive, send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, self._detail(), headers=_CLOSE)
            return message

        await self.app(scope, counted, send)

    def _detail(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    def _too_large(self) -> JSONResponse:
        return JSONResponse({"detail": self._detail()}, status_code=status.HTTP_413_CONTENT_TOO_LARGE, headers=_CLOSE)
