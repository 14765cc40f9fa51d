"""The API documentation pages (/docs Swagger UI, /redoc ReDoc) served without a CDN.

FastAPI's own pages load their JavaScript and CSS from a CDN, so /docs was blank without
internet. The assets come from the ``fastapi-offline`` package (it ships Swagger UI and
ReDoc builds) and are served from this origin under ``/docs-assets/``; the HTML is
FastAPI's own (``get_swagger_ui_html`` / ``get_redoc_html``) pointed at those files.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, status
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_URL = "/docs-assets"
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def install_docs(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets; the app must be created with docs_url=None, redoc_url=None."""
    router = APIRouter(include_in_schema=False)
    title = app.title

    @router.get("/docs")
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} · API docs",
                                   swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @router.get("/docs/oauth2-redirect")
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} · ReDoc",
                              redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False)

    @router.get(ASSETS_URL + "/{name}")
    def asset(name: str) -> FileResponse:
        path = assets_dir() / name
        kind = ASSET_TYPES.get(path.suffix)
        if name.startswith(".") or kind is None or path.parent != assets_dir() or not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no documentation asset {name!r}")
        return FileResponse(path, media_type=kind, headers={"Cache-Control": "public, max-age=86400"})

    app.include_router(router)
