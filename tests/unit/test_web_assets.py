"""The page's files: served by the API, all local (no CDN), every import resolvable.

There is no build step: the files in services/api/web/static are what browsers run, so
"stale assets" cannot happen; these tests check that what is served is exactly those files
(that a wheel ships them: tests/integration/test_wheel_assets.py).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api import web
from tests.unit.api_fixtures import api  # noqa: F401 - fixture: the API on SQLite and memory://, editor token

STATIC = Path(web.__file__).parent / "static"
IMPORT_RE = re.compile(r"""^import[^"';]*?["']([^"']+)["'];$""", re.M)  # one import per line
URL_RE = re.compile(r"https?://[^\s\"'<>)]+")
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}  # XML namespaces, never fetched


def test_the_root_serves_the_page_shell_with_a_strict_content_security_policy(api: TestClient) -> None:
    r = api.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="/assets/app.js">' in r.text
    assert api.get("/docs").status_code == 200  # the API docs stay where they were


def test_every_asset_is_served_byte_for_byte_with_its_media_type(api: TestClient) -> None:
    names = web.asset_names()
    assert {"index.html", "app.css", "app.js", "api.js", "editor.js", "history.js"} <= set(names)
    for name in names:
        r = api.get(f"/assets/{name}")
        assert r.status_code == 200, name
        assert r.content == (STATIC / name).read_bytes(), name
        assert r.headers["content-type"] == web.MEDIA_TYPES[Path(name).suffix], name


@pytest.mark.parametrize("path", ["/assets/__init__.py", "/assets/..%2F__init__.py", "/assets/.hidden.js",
                                  "/assets/missing.js", "/assets/static/app.js"])
def test_nothing_but_the_shipped_assets_can_be_fetched(api: TestClient, path: str) -> None:
    assert api.get(path).status_code == 404


def test_the_page_loads_nothing_from_other_origins() -> None:
    for path in STATIC.iterdir():
        urls = set(URL_RE.findall(path.read_text())) - ALLOWED_URLS
        assert not urls, f"{path.name} refers to other origins: {urls}"


def test_every_module_import_and_asset_reference_resolves_to_a_shipped_file() -> None:
    names = set(web.asset_names())
    for path in STATIC.glob("*.js"):
        for target in IMPORT_RE.findall(path.read_text()):
            assert target.startswith("./") and target[2:] in names, f"{path.name} imports {target}"
    for target in re.findall(r'(?:href|src)="/assets/([^"]+)"', (STATIC / "index.html").read_text()):
        assert target in names, f"index.html refers to {target}"
