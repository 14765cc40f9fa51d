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
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse

from services.api.deps import get_runtime
from shared.store.models import AuditRow
from shared.store.tokens import Principal, authenticate

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


class BodyLimit(BaseHTTPMiddleware):
    """Refuse request bodies larger than ``max_bytes`` with 413 before they are read."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return JSONResponse({"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413)
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()
            if len(body) > self.max_bytes:
                return JSONResponse({"detail": f"request body larger than {self.max_bytes} bytes"}, status_code=413)
        return await call_next(request)
