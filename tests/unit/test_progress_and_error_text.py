"""Issue 18, API side: phases and ETA of a running execution, error text for people, offline docs."""
from __future__ import annotations


import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.docs_offline import install_docs
from shared import phases
from shared.errortext import db_message, for_people
from shared.messages import Event, decode
from shared.store.progress import eta_seconds
from tests.unit.test_recorder import apply, setup, state  # noqa: F401 - the recorder's store fixture



def test_the_furthest_phase_wins_over_late_events_and_the_first_estimate_is_kept(setup) -> None:  # noqa: F811
    sessions, eid = setup
    apply(sessions, Event(execution_id=eid, kind="started", ts=100.0))
    apply(sessions, Event(execution_id=eid, kind="progress", phase="validating", ts=100.5))
    apply(sessions, Event(execution_id=eid, kind="progress", phase="extracting", estimate={"rows": 1000, "source": "PostgreSQL planner"}, ts=101.0))
    apply(sessions, Event(execution_id=eid, kind="progress", phase="loading", ts=101.5))
    apply(sessions, Event(execution_id=eid, kind="progress", phase="extracting", estimate={"rows": 5, "source": "late"}, ts=101.2))
    apply(sessions, Event(execution_id=eid, kind="heartbeat", counts={"rows_read": 250}, ts=102.0))
    s = state(sessions, eid)
    assert (s["phase"], s["phase_label"], s["rows_estimate"], s["estimate_source"]) == \
        ("loading", "Extracting/loading", 1000, "PostgreSQL planner")


def test_an_event_carries_its_phase_and_estimate_over_the_wire() -> None:
    event = decode(Event(execution_id=3, kind="progress", phase="committing", estimate={"rows": 7, "source": "x"}).encode(), expect=Event)
    assert (event.phase, event.estimate) == ("committing", {"rows": 7, "source": "x"})
    old = decode(Event(execution_id=3, kind="heartbeat").encode(), expect=Event)  # a sender without phases: unchanged
    assert old.phase == "" and old.estimate == {}


def test_enter_refuses_an_unknown_phase_and_never_raises_on_a_lost_event() -> None:
    class Broken:
        run = 1

        def publish(self, *_a, **_k):  # type: ignore[no-untyped-def]
            raise ConnectionError("broker gone")

    with pytest.raises(ValueError, match="unknown phase"):
        phases.enter(Broken(), "thinking")
    phases.enter(Broken(), "committing")  # logged, not raised
    assert phases.load_start("truncate_load") == "clearing" and phases.load_start("upsert") == "loading"


@pytest.mark.parametrize(("kw", "expected"), [
    ({"status": "running", "phase": "loading", "rows_read": 250, "estimate": 1000, "seconds": 10.0}, 30.0),
    ({"status": "running", "phase": "extracting", "rows_read": 500, "estimate": 1000, "seconds": 5.0}, 5.0),
    ({"status": "running", "phase": "loading", "rows_read": 1500, "estimate": 1000, "seconds": 5.0}, None),  # past it
    ({"status": "running", "phase": "committing", "rows_read": 250, "estimate": 1000, "seconds": 10.0}, None),
    ({"status": "running", "phase": "loading", "rows_read": 0, "estimate": 1000, "seconds": 10.0}, None),
    ({"status": "running", "phase": "loading", "rows_read": 250, "estimate": None, "seconds": 10.0}, None),
    ({"status": "completed", "phase": "loading", "rows_read": 250, "estimate": 1000, "seconds": 10.0}, None),
])
def test_eta_extrapolates_the_rate_so_far_to_the_estimate(kw: dict, expected: float | None) -> None:
    assert eta_seconds(**kw) == expected


def test_error_text_names_the_project_says_the_kind_once_and_drops_driver_tuples() -> None:
    raw = ("validation failed: step 1 'Orders' (project 3, mysql): connection failed while connecting: "
           "(pymysql.err.OperationalError) (1045, \"Access denied for user 'x'@'localhost' (using password: YES)\") "
           "(Background on this error at: https://sqlalche.me/e/20/e3q8)")
    assert for_people(raw, kind="validation", names={3: "Orders MariaDB"}) == (
        "step 1 'Orders' (project “Orders MariaDB”, mysql): connection failed while connecting: "
        "Access denied for user 'x'@'localhost' (using password: YES) (error 1045)")
    assert for_people("project 9 is unreachable: timeout", names={3: "A"}) == "project 9 is unreachable: timeout"
    assert for_people("relation \"x\" does not exist [SQL: SELECT * FROM x]", kind="source") == 'relation "x" does not exist'


def test_db_message_keeps_what_the_database_said() -> None:
    import pymysql

    assert db_message(pymysql.err.OperationalError(1045, "Access denied for user 'x'")) == "Access denied for user 'x' (error 1045)"
    assert db_message(ValueError("plain words")) == "plain words"


def test_the_api_docs_are_served_from_this_origin() -> None:
    app = FastAPI(title="T", docs_url=None, redoc_url=None)
    install_docs(app)
    client = TestClient(app)
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200 and f"/docs-assets/{asset}" in page.text
        assert "cdn." not in page.text and "fonts.googleapis" not in page.text, path
        r = client.get(f"/docs-assets/{asset}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript") and len(r.content) > 100_000
    assert client.get("/docs-assets/../core.py").status_code == 404
    assert client.get("/docs-assets/core.py").status_code == 404
