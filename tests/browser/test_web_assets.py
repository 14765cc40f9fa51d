"""The page's files: served by the API, all local (no CDN), every import resolvable, shipped in the wheel.

There is no build step: the files in services/api/web/static are what browsers run, so
"stale assets" cannot happen; these tests check that what is served is exactly those files.
"""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api import web
from services.api.app import create_app
from shared.bootstrap import build_secret_box, build_store, build_transport
from shared.settings import Settings
from tests.e2e.stack import REPO

STATIC = Path(web.__file__).parent / "static"
IMPORT_RE = re.compile(r"""^import[^"';]*?["']([^"']+)["'];$""", re.M)  # one import per line
URL_RE = re.compile(r"https?://[^\s\"'<>)]+")
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}  # XML namespaces, never fetched
TOKEN = "assets-test-token"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    """The API on SQLite and the in-memory transport, called with an editor token."""
    auth = {"admin_token": TOKEN} if "admin_token" in Settings.model_fields else {}
    settings = Settings(data_dir=tmp_path, amqp_url="memory://", database_url="", **auth)  # type: ignore[arg-type]
    transport, topology = build_transport(settings, name="test")
    app = create_app(settings, transport, store=build_store(settings), box=build_secret_box(settings), topology=topology)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client
    transport.close()


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


def test_a_built_wheel_ships_every_asset(tmp_path: Path) -> None:
    # Given a wheel built from the working tree (what `pip install .` installs)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    wheel = next(tmp_path.glob("*.whl"))
    # Then it carries every file the page needs
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in web.asset_names() if f"services/api/web/static/{n}" not in shipped]
    assert not missing, f"the wheel lacks {missing}; check [tool.setuptools.package-data]"


def test_schedule_preview_gives_the_description_and_next_five_runs_in_the_time_zone(api: TestClient) -> None:
    r = api.get("/api/schedule/preview", params={"schedule": "0 2 * * *", "timezone": "Europe/Berlin"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["description"] == "Daily at 02:00" and body["timezone"] == "Europe/Berlin"
    runs = [datetime.fromisoformat(x) for x in body["next_runs"]]
    assert len(runs) == 5 and runs == sorted(runs)
    assert all((t.hour, t.minute) == (2, 0) and t.utcoffset() is not None for t in runs)


def test_schedule_preview_without_a_schedule_means_manual_only(api: TestClient) -> None:
    body = api.get("/api/schedule/preview", params={"schedule": ""}).json()
    assert body["next_runs"] == [] and "Manual" in body["description"]


def test_schedule_preview_names_the_invalid_fields(api: TestClient) -> None:
    r = api.get("/api/schedule/preview", params={"schedule": "0 2 * *", "timezone": "Mars/Olympus"})
    assert r.status_code == 422
    fields = {e["field"]: e["msg"] for e in r.json()["detail"]}
    assert "5 fields" in fields["schedule"] and "unknown time zone" in fields["timezone"]
