"""Browser tests: Debian's chromium driven by Playwright against the running system.

Chromium is launched by path (``DM_TEST_CHROMIUM``, else ``chromium`` on PATH); nothing
is downloaded. A missing chromium, Playwright or database skips these tests locally and
FAILS them under CI=true. Screenshots go to ``test-artifacts/screenshots/``.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.stack import REPO, Stack, stack_env

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


@dataclass
class Databases:
    """Fresh PostgreSQL and MariaDB databases for one test module, dropped afterwards."""

    pg_admin: sa.Engine
    my_admin: sa.Engine
    pg: list[str] = field(default_factory=list)
    my: list[str] = field(default_factory=list)

    def postgresql(self) -> str:
        name = unique_name("dmweb")
        with self.pg_admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.pg.append(name)
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    def mariadb(self) -> str:
        name = unique_name("dmweb")
        with self.my_admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        self.my.append(name)
        return make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.pg_admin.connect() as conn:
            for name in self.pg:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with self.my_admin.connect() as conn:
            for name in self.my:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        self.pg_admin.dispose()
        self.my_admin.dispose()


@pytest.fixture(scope="module")
def databases() -> Iterator[Databases]:
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases(sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT"),
                    sa.create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT"))
    yield dbs
    dbs.drop()


@pytest.fixture(scope="module")
def web_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system in one process (``datamig serve all``) on PostgreSQL metadata."""
    tmp = tmp_path_factory.mktemp("web")
    env = stack_env(tmp, database_url=databases.postgresql(), amqp_url="memory://", prefix=unique_name("dmweb"),
                    DM_ADMIN_TOKEN=TOKEN)
    (tmp / "logs").mkdir()
    stack = Stack(base_url=f"http://127.0.0.1:{env['DM_API_PORT']}", env=env, log_dir=tmp / "logs")
    stack.start("api", "all")
    try:
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop()


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
    assert not tab.errors, "the page reported errors:\n" + "\n".join(tab.errors) + "\n" + web_stack.log("api")[-3000:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_token: the browser starts without an API token")
    config.addinivalue_line("markers", "axe: the tab may inject axe-core (the page's CSP is bypassed)")
