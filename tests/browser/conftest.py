"""Browser tests: Debian's chromium driven by Playwright against the running system.

Chromium is launched by path (``DM_TEST_CHROMIUM``, else ``chromium`` on PATH); nothing
is downloaded. A missing chromium, Playwright or database skips these tests locally and
FAILS them under CI=true. Screenshots go to ``test-artifacts/screenshots/``.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import REPO, Stack
from tests.fixtures.databases import Databases  # noqa: F401 - imported from here by browser tests
from tests.fixtures.servers import IN_CI, MYSQL_URL, require_service, unique_name
from tests.fixtures.stacks import SINGLE_PROCESS, Stacks

SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
TOKEN = "browser-tests-editor-token"  # DM_ADMIN_TOKEN of the stack; the page reads it from localStorage
TOKEN_KEY = "datamig.token"
# Chromium logs every 4xx answer as a console error; the page shows those itself.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing browser is a failure)")
    pytest.skip(message)


def chromium_path() -> str:
    path = os.environ.get("DM_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not Path(path).exists():
        _missing("chromium is not installed (apt-get install chromium; `make test` does it as root)")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class Page:
    """A browser tab on the system's page, with the JavaScript errors it met."""

    page: object
    base_url: str
    errors: list[str] = field(default_factory=list)

    def open(self, route: str = "#/jobs") -> object:
        self.page.goto(f"{self.base_url}/{route}")
        self.page.locator("main h1").first.wait_for()
        return self.page

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def shot_of(self, locator: object, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        locator.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def databases(module_databases: Databases) -> Databases:
    """Browser tests share their module's stack, so their databases live as long: ``module_databases``
    (``.postgresql()`` / ``.mariadb()`` or ``.pg()`` / ``.mysql()``)."""
    return module_databases


@pytest.fixture(scope="module")
def web_stack(module_databases: Databases, module_stacks: Stacks) -> Stack:
    """The whole system in one process (``datamig serve all``) on PostgreSQL metadata."""
    require_service("MariaDB", MYSQL_URL)
    return module_stacks(module_databases.pg(), amqp_url="memory://", prefix=unique_name("dmweb"),
                         services=SINGLE_PROCESS, DM_ADMIN_TOKEN=TOKEN)


@pytest.fixture
def web_api(web_stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client on the stack's API, with the token."""
    with httpx.Client(base_url=web_stack.base_url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def web(browser: object, web_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh 1280×800 tab holding the token; the test fails if the page throws or logs an unexpected error."""
    # axe-core is injected as a script: only its tests let the page's CSP allow that
    context = browser.new_context(viewport=DESKTOP, bypass_csp="axe" in request.keywords)
    if "no_token" not in request.keywords:
        context.add_init_script(f"window.localStorage.setItem({TOKEN_KEY!r}, {TOKEN!r})")
    page = context.new_page()
    page.set_default_timeout(15_000)
    tab = Page(page=page, base_url=web_stack.base_url)
    page.on("pageerror", lambda exc: tab.errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: tab.errors.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and not EXPECTED_CONSOLE.search(msg.text) else None)
    yield tab
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        tab.shot(f"FAILED-{request.node.name}")
    context.close()
    assert not tab.errors, "the page reported errors:\n" + "\n".join(tab.errors) + "\n" + web_stack.log("all")[-3000:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_token: the browser starts without an API token")
    config.addinivalue_line("markers", "axe: the tab may inject axe-core (the page's CSP is bypassed)")
