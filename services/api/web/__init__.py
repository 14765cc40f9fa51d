"""The web page: one HTML shell plus plain CSS and JavaScript modules, served as files.

There is no build step: the files under ``static/`` are what the browser runs, so the
shipped assets cannot be stale. ``GET /`` answers the shell and ``GET /assets/{name}``
the assets; both are revalidated on every load (``no-cache``) so an upgrade shows at once.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Everything comes from this origin: no CDN, no inline script, works offline.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
def index() -> FileResponse:
    """The page shell; the JavaScript draws the pages (hash routes such as ``#/jobs``)."""
    return FileResponse(STATIC_DIR / "index.html", media_type=MEDIA_TYPES[".html"],
                        headers=HEADERS | {"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@router.get("/assets/{name}")
def asset(name: str) -> FileResponse:
    """One static file by name (no sub-folders, so no path can leave ``static/``).

    Raises HTTPException 404 for anything that is not a shipped asset.
    """
    path = STATIC_DIR / name
    media_type = MEDIA_TYPES.get(path.suffix)
    if name.startswith(".") or media_type is None or path.parent != STATIC_DIR or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {name!r}")
    return FileResponse(path, media_type=media_type, headers=HEADERS)


def asset_names() -> list[str]:
    """The shipped asset files (what ``/assets/`` can serve)."""
    return sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in MEDIA_TYPES and not p.name.startswith("."))
