"""Attacks on project options and stored passwords, against real PostgreSQL and MariaDB.

A fake server on a free loopback port records every byte it receives; it asks PostgreSQL
clients for a clear-text password, so a password sent to it would be caught.
"""
from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from shared.connections import ProjectSpec, build_url, create_db_engine
from tests.conftest import MYSQL_URL, PG_URL, require_service
from tests.unit.api_fixtures import api  # noqa: F401 - fixture

SECRET = "Stored-Pa55word-of-the-test"


class FakeServer:
    """Accepts connections on 127.0.0.1; answers like a PostgreSQL server asking for a
    clear-text password (and closes MySQL clients after their first bytes)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(3)
                try:
                    self._pg_dialogue(conn)
                except OSError:
                    pass

    def _read(self, conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        self.received += data
        return data

    def _pg_dialogue(self, conn: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", self._read(conn, 8))
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                conn.sendall(b"N")
                continue
            self._read(conn, length - 8)  # the startup packet: user, database
            conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            _, length = struct.unpack("!ci", self._read(conn, 5))
            self._read(conn, length - 4)
            return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


def saved_project(api: TestClient, url: str, name: str = "src") -> dict:
    parsed = make_url(url)
    body = {"name": name, "engine": parsed.get_backend_name(), "host": parsed.host, "port": parsed.port,
            "database": parsed.database, "username": parsed.username, "password": SECRET}
    r = api.post("/api/projects", json=body)
    assert r.status_code == 201, r.text
    return {**body, "id": r.json()["id"]}


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_stored_password_is_never_sent_to_another_server(api: TestClient, fake_server: FakeServer,
                                                           engine: str) -> None:
    url = PG_URL if engine == "postgresql" else MYSQL_URL
    require_service(engine, url)
    project = saved_project(api, url)
    pid = project["id"]
    moved = {k: v for k, v in project.items() if k not in ("id", "password")} | {"port": fake_server.port}
    # the unsaved-settings test with another port and no password
    r = api.post(f"/api/projects/test?project_id={pid}", json=moved)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == "password" and "enter the password again" in r.json()["detail"][0]["msg"]
    # so is an edit that points the project elsewhere, through the fields or through a URL
    for body in (moved, {"name": "src", "url": f"{engine}://{project['username']}@127.0.0.1:{fake_server.port}/x"},
                 {**moved, "port": project["port"], "username": "someone_else"}):
        r = api.put(f"/api/projects/{pid}", json=body)
        assert r.status_code == 422 and "password" in r.json()["detail"][0]["msg"], r.text
    assert api.get(f"/api/projects/{pid}").json()["port"] == project["port"]
    assert fake_server.connections == 0 and SECRET.encode() not in fake_server.received
    # with the password given again, the change is made and audited
    r = api.put(f"/api/projects/{pid}", json={**moved, "password": "another one"})
    assert r.status_code == 200 and r.json()["port"] == fake_server.port
    audit = api.get("/api/audit").json()["items"]
    refused = [a for a in audit if a["action"] == "project.secret_refused"]
    assert len(refused) == 4 and refused[-1]["details"]["connection_changed"]["port"] == [project["port"],
                                                                                          fake_server.port]
    update = [a for a in audit if a["action"] == "project.update"][0]
    assert update["details"]["password_changed"] is True and "port" in update["details"]["connection_changed"]
    assert SECRET not in str(audit)


def test_the_stored_password_still_serves_its_own_server(api: TestClient, fake_server: FakeServer) -> None:
    """Control: the edit form's test (no password, same server) does send it there, so the
    fake server would have caught a password sent to it."""
    project = saved_project(api, f"postgresql://bob@127.0.0.1:{fake_server.port}/app")
    same = {k: v for k, v in project.items() if k not in ("id", "password")} | {"options": {"connect_timeout": "3"}}
    r = api.post(f"/api/projects/test?project_id={project['id']}", json=same)
    assert r.status_code == 200 and r.json()["ok"] is False
    assert fake_server.connections >= 1 and SECRET.encode() in fake_server.received
    assert SECRET not in r.text


def test_init_command_never_runs(api: TestClient, mysql_database) -> None:
    require_service("MariaDB", MYSQL_URL)
    url = make_url(mysql_database())
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE victim (id INT)")
    body = {"name": "m", "engine": "mysql", "host": url.host, "port": url.port, "database": url.database,
            "username": url.username, "options": {"init_command": "INSERT INTO victim VALUES (1)"}}
    for path in ("/api/projects", "/api/projects/test"):
        r = api.post(path, json=body)
        assert r.status_code == 422 and "'init_command' is not an allowed mysql option" in r.text
    with admin.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM victim").scalar() == 0
    admin.dispose()


def test_allowed_options_take_effect(pg_url: str, mysql_url: str) -> None:
    """Options beat our connection defaults (they used to be overridden silently)."""
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    pg = ProjectSpec(name="p", url=pg_url, options={"application_name": "nightly-copy", "connect_timeout": "4",
                                                    "sslmode": "disable"})
    engine = create_db_engine(build_url(pg), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW application_name").scalar() == "nightly-copy"
    engine.dispose()
    my = ProjectSpec(name="m", url=mysql_url, options={"read_timeout": "7", "charset": "utf8mb4",
                                                       "ssl_disabled": "false", "program_name": "nightly"})
    engine = create_db_engine(build_url(my), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw._read_timeout == 7 and raw.charset == "utf8mb4"
        assert conn.exec_driver_sql("SELECT @@character_set_client").scalar() == "utf8mb4"
    engine.dispose()
