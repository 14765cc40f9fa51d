"""Execute → dispatched without waiting for the scheduler's poll (shared.wakeup)."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from fastapi.testclient import TestClient

from services.api.app import create_app
from services.scheduler.scheduler import Scheduler
from shared import messages
from shared.bootstrap import build_secret_box, build_store, build_transport
from shared.messages import RunRequest
from shared.store.db import session_factory
from tests.unit.api_fixtures import AUTH, job_body, make_settings, sqlite_project

LONG_POLL_S = 60.0  # far longer than the test may wait: a dispatch can only come from the announcement


def test_a_manual_execution_is_dispatched_at_once_not_at_the_next_poll(tmp_path: Path) -> None:
    # Given an API and a scheduler sharing a store and a transport; the scheduler polls once a minute
    settings = make_settings(tmp_path)
    transport, topology = build_transport(settings, name="test")
    store = build_store(settings)
    app = create_app(settings, transport, store=store, box=build_secret_box(settings), topology=topology)
    scheduler = Scheduler(session_factory(store), transport, topology, poll_s=LONG_POLL_S, worker_lost_s=30.0,
                          batch_rows=1000)
    source = tmp_path / "src.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    with TestClient(app, headers=AUTH) as client:
        src = sqlite_project(client, "src", source)
        dst = sqlite_project(client, "dst", tmp_path / "dst.db")
        job = client.post("/api/jobs", json=job_body(src, dst)).json()["id"]
        thread = threading.Thread(target=scheduler.serve, daemon=True)
        thread.start()
        try:
            assert transport.get(topology.runs, timeout_s=0.5) is None  # first pass done, nothing queued
            # When the user executes the job
            execution = client.post(f"/api/jobs/{job}/execute").json()["execution_id"]
            # Then its run request is published long before the next poll would have found it
            message = transport.get(topology.runs, timeout_s=10.0)
            assert message is not None, "the execution waited for the poll"
            request = messages.decode(message.body, expect=RunRequest)
            assert request.execution_id == execution
            # and history does not change because of the announcement
            assert client.get(f"/api/executions/{execution}").json()["status"] == "queued"
        finally:
            scheduler.stop()
            thread.join(timeout=10)
    transport.close()
