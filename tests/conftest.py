"""Shared fixtures: real PostgreSQL, MariaDB and RabbitMQ, isolated per test.

Addresses come from environment variables with the build machines' defaults:
DM_TEST_PG_URL, DM_TEST_MYSQL_URL, DM_TEST_AMQP_URL. When no address was given and
nothing answers at the default, a Docker engine (if any) starts the service with
testcontainers (tests/fixtures/services.py). A service still unreachable skips the test
locally and FAILS it when CI=true. SQL Server: tests/fixtures/mssql.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import socket
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("DM_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("DM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
AMQP_URL = os.environ.get("DM_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytest_plugins = ["tests.fixtures.mssql"]


def _reachable(url: str) -> bool:
    parsed = urlparse(url.replace("+psycopg2", "").replace("+pymysql", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=3):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Skip (locally) or fail (CI=true) when a service is not reachable (and no container could serve it)."""
    if not _reachable(url):
        from tests.fixtures import services

        problem = services.start_for_default(name, url, services.READY[name])
        if problem is None:
            return
        message = f"{name} is not reachable at {url}; {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _database_factory(admin_url: str, *, create: str, drop: str) -> Iterator[Callable[[], str]]:
    """Yield a factory of fresh databases on ``admin_url``; drop them all afterwards."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = unique_name("dm")
        with admin.connect() as conn:
            conn.exec_driver_sql(create.format(name=name))
        created.append(name)
        return make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in created:
            conn.exec_driver_sql(drop.format(name=name))
    admin.dispose()


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """Factory: creates a fresh PostgreSQL database, returns its URL; dropped afterwards."""
    require_service("PostgreSQL", PG_URL)
    yield from _database_factory(PG_URL, create='CREATE DATABASE "{name}"',
                                 drop='DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: Callable[[], str]) -> str:
    return pg_database()


@pytest.fixture
def mysql_database() -> Iterator[Callable[[], str]]:
    """Factory: creates a fresh MariaDB/MySQL database (utf8mb4), returns its URL; dropped afterwards."""
    require_service("MariaDB", MYSQL_URL)
    yield from _database_factory(MYSQL_URL, create="CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                                 drop="DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def mysql_url(mysql_database: Callable[[], str]) -> str:
    return mysql_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / unique_name('db')}.sqlite"


@pytest.fixture
def amqp_url() -> str:
    require_service("RabbitMQ", AMQP_URL)
    return AMQP_URL


BROKER_PREFIXES: set[str] = set()


@pytest.fixture
def queue_prefix() -> str:
    """A queue/exchange prefix of its own, so runs never see each other's messages."""
    prefix = unique_name("dmtest")
    BROKER_PREFIXES.add(prefix)
    return prefix


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
