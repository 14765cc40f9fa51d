"""One place that maps errors to HTTP answers: clear 4xx, never a traceback."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.connections import mask_secrets_in_text
from shared.errors import ConfigError, DatamigError

log = logging.getLogger("datamig.api")


def field_error(loc: list | tuple, message: str) -> dict:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return {"loc": list(loc), "field": ".".join(parts), "msg": message}


class FieldErrors(Exception):
    """A request that parsed but names something that does not exist (422)."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['msg']}" for e in errors))


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [field_error(e.get("loc", ()), _clean(str(e.get("msg", "")))) for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(FieldErrors)
    async def _fields(_: Request, exc: FieldErrors) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": mask_secrets_in_text(str(exc))}, status_code=400)

    @app.exception_handler(DatamigError)
    async def _domain(_: Request, exc: DatamigError) -> JSONResponse:
        return JSONResponse({"detail": mask_secrets_in_text(str(exc)), "kind": exc.kind}, status_code=409)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    app.add_middleware(CatchAll)


class CatchAll:
    """Any other error: logged, answered 500 — and not raised further.

    (Starlette's handler for ``Exception`` answers and then re-raises, so uvicorn closes the
    keep-alive connection and the client's next request on it fails.)
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:  # noqa: BLE001 - the last line of defence answers instead of dropping the connection
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await JSONResponse({"detail": "internal error; see the API log"}, status_code=500)(scope, receive, send)
