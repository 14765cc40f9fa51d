"""Shared fixtures: real PostgreSQL, MariaDB and RabbitMQ, isolated per test.

Addresses come from environment variables with the build machines' defaults:
DM_TEST_PG_URL, DM_TEST_MYSQL_URL, DM_TEST_AMQP_URL. When no address was given and
nothing answers at the default, a Docker engine (if any) starts the service with
testcontainers (tests/fixtures/services.py). A service still unreachable skips the test
locally and FAILS it when CI=true (tests/fixtures/servers.py). SQL Server: tests/fixtures/mssql.py.

The one database factory (``databases``, ``module_databases``; ``pg_database`` and
``mysql_database`` as shortcuts) and the one stack factory (``stacks``, ``module_stacks``)
clean up after themselves. Every test gets the marker of its directory: unit, contract,
integration, e2e, browser (``pytest -m e2e``; ``make test-unit`` … ``make test-browser``).
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.databases import Databases, wait_dropped
from tests.fixtures.servers import (AMQP_URL, BROKER_PREFIXES, IN_CI, MYSQL_URL, PG_URL,  # noqa: F401 - re-exported
                                    _reachable, require_service, unique_name)
from tests.fixtures.stacks import Stacks

pytest_plugins = ["tests.fixtures.mssql"]
# tests/<directory>/... → the marker every test in it gets (pytest -m unit, make test-unit, ...)
MARKER_OF_DIRECTORY = {"unit": "unit", "contract": "contract", "integration": "integration", "e2e": "e2e",
                       "browser": "browser"}
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            directory = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        marker = MARKER_OF_DIRECTORY.get(directory)
        if marker is not None:
            item.add_marker(marker)


def _database_factory(admin_url: str, *, create: str, drop: str) -> Iterator[Callable[[], str]]:
    """Kept for tests written against it: a generator of a database factory over :class:`Databases`
    (``create``/``drop`` only choose MariaDB's collation; ``drop`` is always DROP DATABASE)."""
    dbs = Databases()
    if admin_url == MYSQL_URL:
        yield lambda: dbs.mysql(collation="utf8mb4_bin" if "utf8mb4_bin" in create else None)
    else:
        yield dbs.pg
    dbs.drop_all()


@pytest.fixture
def databases() -> Iterator[Databases]:
    """Factory of fresh databases (``.pg()``, ``.mysql()``), all dropped after the test."""
    dbs = Databases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="module")
def module_databases() -> Iterator[Databases]:
    """Factory of fresh databases dropped at the end of the module (for module-scoped data)."""
    dbs = Databases()
    yield dbs
    dbs.drop_all()


@pytest.fixture
def pg_database(databases: Databases) -> Callable[[], str]:
    """Factory: creates a fresh PostgreSQL database, returns its URL; dropped afterwards."""
    require_service("PostgreSQL", PG_URL)
    return databases.pg


@pytest.fixture
def pg_url(pg_database: Callable[[], str]) -> str:
    return pg_database()


@pytest.fixture
def mysql_database(databases: Databases) -> Callable[[], str]:
    """Factory: creates a fresh MariaDB/MySQL database (utf8mb4), returns its URL; dropped afterwards."""
    require_service("MariaDB", MYSQL_URL)
    return databases.mysql


@pytest.fixture
def mysql_url(mysql_database: Callable[[], str]) -> str:
    return mysql_database()


@pytest.fixture
def stacks(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    """Factory of running stacks (``stacks(**options)``, see tests/fixtures/stacks.py), each on
    a fresh PostgreSQL metadata database unless one is given; all stopped after the test."""
    factory = Stacks(lambda: tmp_path_factory.mktemp("stack"), databases.pg)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def module_stacks(module_databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    """Like ``stacks``, stopped at the end of the module: one booted stack for tests that only
    need jobs and tables of their own."""
    factory = Stacks(lambda: tmp_path_factory.mktemp("stack"), module_databases.pg)
    yield factory
    factory.stop_all()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / unique_name('db')}.sqlite"


@pytest.fixture
def amqp_url() -> str:
    require_service("RabbitMQ", AMQP_URL)
    return AMQP_URL


@pytest.fixture
def queue_prefix() -> str:
    """A queue/exchange prefix of its own, so runs never see each other's messages."""
    prefix = unique_name("dmtest")
    BROKER_PREFIXES.add(prefix)
    return prefix


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """The test databases are dropped in the background while later tests run; wait for the last."""
    yield
    wait_dropped()


@pytest.fixture(scope="session", autouse=True)
def _remove_test_queues() -> Iterator[None]:
    """At the end of the run, delete the queues and exchanges this run's prefixes created,
    so the shared broker does not collect them run after run (best effort)."""
    yield
    if not BROKER_PREFIXES or shutil.which("rabbitmqctl") is None or not _reachable(AMQP_URL):
        return
    import pika

    names: dict[str, list[str]] = {}
    for kind in ("queues", "exchanges"):
        listed = subprocess.run(["rabbitmqctl", "-q", f"list_{kind}", "name"], capture_output=True, text=True,
                                timeout=60)
        names[kind] = [n for n in listed.stdout.split() if n.split(".", 1)[0] in BROKER_PREFIXES]
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = connection.channel()
        for queue in names["queues"]:
            channel.queue_delete(queue)
        for exchange in names["exchanges"]:
            channel.exchange_delete(exchange)
        connection.close()
    except Exception:  # noqa: BLE001 - cleanup must never fail a green run
        pass
