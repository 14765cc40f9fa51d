"""The API behind a real uvicorn server: a chunked body over the limit is refused while it
streams (unauthenticated, without holding it in memory), and a 500 keeps the connection."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from services.api.app import create_app
from shared.bootstrap import build_secret_box, build_store, build_transport
from tests.unit.api_fixtures import AUTH, make_settings

MB = 1024 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    settings = make_settings(tmp_path)
    transport, topology = build_transport(settings, name="test")
    app = create_app(settings, transport, store=build_store(settings), box=build_secret_box(settings),
                     topology=topology)

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("an unexpected bug")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    transport.close()


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(server: str) -> None:
    # Given 50 MB sent chunked (no Content-Length) and no token
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        block = b"x" * (256 * 1024)
        for _ in range(200):
            sent += len(block)
            yield block

    before = _rss_bytes()
    with httpx.Client(timeout=60) as client:
        r = client.post(f"{server}/api/jobs", content=chunks(), headers={"Content-Type": "application/json"})
    # Then 413 (not 401: the limit comes before authentication), long before the body ended,
    # and the server did not hold the body in memory
    assert r.status_code == 413, r.text
    assert "larger than" in r.json()["detail"]
    assert sent < 50 * MB  # the server stopped reading and closed the connection
    assert _rss_bytes() - before < 20 * MB


def test_a_declared_content_length_over_the_limit_is_refused_before_reading(server: str) -> None:
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{server}/api/jobs", content=b"{" * (3 * MB), headers=AUTH)
    assert r.status_code == 413


def test_a_500_keeps_the_keep_alive_connection_for_the_next_request(server: str) -> None:
    ports = []

    def remember(response: httpx.Response) -> None:
        stream = response.extensions["network_stream"]
        ports.append(stream.get_extra_info("socket").getsockname()[1])

    with httpx.Client(timeout=30, event_hooks={"response": [remember]}) as client:
        first = client.get(f"{server}/boom")
        second = client.get(f"{server}/api/jobs", headers=AUTH)
    assert first.status_code == 500 and first.json() == {"detail": "internal error; see the API log"}
    assert second.status_code == 200
    assert first.headers.get("connection", "") != "close"
    assert ports[0] == ports[1]  # the same TCP connection served both
