"""Project options are allow-listed per engine; secret-bearing fields are encrypted and masked."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from shared.connections import create_db_engine, ProjectSpec, build_url, mask_secrets_in_text
from shared.store.models import ExecutionRow
from shared.store.projects import project_snapshot
from shared.store.tokens import create_token
from tests.unit.api_fixtures import api, job_body, sqlite_project  # noqa: F401 - fixture

SECRET = "Opt1on-S3cret-value"
PG = {"engine": "postgresql", "host": "db.example", "database": "app", "username": "bob"}
MY = {"engine": "mysql", "host": "db.example", "database": "app", "username": "bob"}


def viewer(api: TestClient) -> dict:
    with api.app.state.runtime.sessions() as session:
        _, token = create_token(session, name="v", role="viewer")
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def stored_dump(api: TestClient) -> str:
    with api.app.state.runtime.store.connect() as conn:
        return str(conn.execute(sa.text("SELECT * FROM dm_projects")).all())


REFUSED = [
    ({**MY, "options": {"init_command": "INSERT INTO victim VALUES (1)"}}, "init_command"),
    ({**MY, "options": {"read_default_file": "/etc/mysql/debian.cnf"}}, "read_default_file"),
    ({**MY, "options": {"unix_socket": "/run/mysqld/mysqld.sock"}}, "unix_socket"),
    ({**MY, "options": {"client_flag": "65536"}}, "client_flag"),
    ({**MY, "options": {"local_infile": "1"}}, "local_infile"),
    ({**PG, "options": {"options": "-c default_transaction_read_only=off"}}, "options"),
    ({**PG, "options": {"passfile": "/root/.pgpass"}}, "passfile"),
    ({**PG, "options": {"service": "prod"}}, "service"),
    ({**PG, "options": {"hostaddr": "10.0.0.1"}}, "hostaddr"),
    ({"engine": "sqlite", "database": "/tmp/x.db", "options": {"uri": "true"}}, "uri"),
    ({"engine": "mssql", "host": "h", "database": "d", "options": {"odbc_connect": "DSN=evil"}}, "odbc_connect"),
    ({"url": "mysql://bob@db.example/app?init_command=DELETE+FROM+victim"}, "init_command"),
    ({"url": "postgresql://bob@db.example/app?options=-c%20role%3Dpostgres"}, "options"),
]
BAD_VALUES = [({"sslmode": "sometimes"}, "must be one of disable"), ({"connect_timeout": "ten"}, "whole number"),
              ({"application_name": "a;b"}, "without ;")]


def test_options_outside_the_allow_list_are_a_422_naming_them(api: TestClient) -> None:
    for body, option in REFUSED:
        for path in ("/api/projects", "/api/projects/test"):
            r = api.post(path, json={"name": "p", **body})
            assert r.status_code == 422, (option, r.text)
            errors = r.json()["detail"]
            assert any(e["field"] in ("options", "url") and f"'{option}' is not an allowed" in e["msg"]
                       for e in errors), errors
            assert SECRET not in r.text
    assert api.get("/api/projects").json() == []
    for options, words in BAD_VALUES:
        r = api.post("/api/projects", json={"name": "p", **PG, "options": options})
        assert r.status_code == 422 and words in r.json()["detail"][0]["msg"], r.text


def test_a_project_saved_with_a_refused_option_is_shown_but_not_used(api: TestClient) -> None:
    from shared.store.models import ProjectRow

    with api.app.state.runtime.sessions() as session:
        row = ProjectRow(name="old", engine="mysql", host="127.0.0.1", database="d", options={"init_command": "X"})
        session.add(row)
        session.commit()
        pid = row.id
    assert api.get(f"/api/projects/{pid}").json()["options"] == {"init_command": "X"}
    r = api.post(f"/api/projects/{pid}/test")
    assert r.status_code == 400 and "needs editing" in r.json()["detail"] and "init_command" in r.json()["detail"]


def test_allowed_options_are_kept_and_reach_the_driver(api: TestClient) -> None:
    options = {"sslmode": "require", "connect_timeout": "5", "application_name": "nightly", "sslpassword": SECRET}
    r = api.post("/api/projects", json={"name": "p", **PG, "options": options})
    assert r.status_code == 201, r.text
    assert r.json()["options"] == {**options, "sslpassword": "***"}
    with api.app.state.runtime.sessions() as session:
        from shared.store.models import ProjectRow
        spec = project_snapshot(session.get(ProjectRow, r.json()["id"])).connection(api.app.state.runtime.box)
    assert spec.options == options
    assert dict(build_url(spec).query) == options


def test_product_options_never_reach_the_driver() -> None:
    spec = ProjectSpec(name="p", **PG, options={"read_role": "reader", "zero_dates": "null", "sslmode": "require"})
    url = build_url(spec)  # read_role rides in the URL to create_db_engine, which takes it out
    assert dict(url.query) == {"sslmode": "require", "read_role": "reader"}
    engine = create_db_engine(url)
    assert dict(engine.url.query) == {"sslmode": "require"}
    engine.dispose()
    assert spec.options["read_role"] == "reader"


def test_secret_options_and_query_passwords_are_encrypted_and_masked_for_everyone(api: TestClient) -> None:
    url = f"postgresql://bob@db.example:5432/app?sslmode=require&password={SECRET}-pw&sslpassword={SECRET}-q"
    r = api.post("/api/projects", json={"name": "p", "url": url, "options": {"sslkey": f"/keys/{SECRET}.key"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["has_password"] is True
    assert body["url"] == "postgresql://bob:***@db.example:5432/app?sslmode=require"
    assert body["options"] == {"sslpassword": "***", "sslkey": "***"}
    answers = [r.text, api.get("/api/projects").text, api.get(f"/api/projects/{body['id']}").text,
               api.get("/api/projects", headers=viewer(api)).text]
    assert all(SECRET not in text for text in answers)
    assert SECRET not in stored_dump(api)
    # an edit that sends the masked values back keeps them; the snapshot decrypts them for the workers
    again = api.put(f"/api/projects/{body['id']}", json={"name": "p", "url": body["url"].replace(":***", ""),
                                                         "options": body["options"]})
    assert again.status_code == 200, again.text
    with api.app.state.runtime.sessions() as session:
        from shared.store.models import ProjectRow
        snap = project_snapshot(session.get(ProjectRow, body["id"]))
    assert SECRET not in str(snap)
    spec = snap.connection(api.app.state.runtime.box)
    assert spec.password == f"{SECRET}-pw"
    assert spec.options == {"sslpassword": f"{SECRET}-q", "sslkey": f"/keys/{SECRET}.key"}


def test_a_password_given_as_an_option_is_the_project_password(api: TestClient) -> None:
    r = api.post("/api/projects", json={"name": "p", **PG, "options": {"password": SECRET, "sslmode": "require"}})
    assert r.status_code == 201 and r.json()["has_password"] is True and r.json()["options"] == {"sslmode": "require"}
    assert SECRET not in r.text + api.get("/api/projects").text + stored_dump(api)


def test_masked_secret_option_without_a_stored_value_is_refused(api: TestClient) -> None:
    r = api.post("/api/projects", json={"name": "p", **PG, "options": {"sslpassword": "***"}})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "options.sslpassword"


def test_secrets_are_masked_in_free_text() -> None:
    text = f"dsn host=h password={SECRET} sslpassword='{SECRET}' url ?passwd={SECRET}&x=1 {{'ssl_key_password': '{SECRET}'}}"
    masked = mask_secrets_in_text(text)
    assert SECRET not in masked and "host=h" in masked and "x=1" in masked
    assert mask_secrets_in_text('password authentication failed for user "bob"') == \
        'password authentication failed for user "bob"'


def test_stack_traces_are_for_editors_only(api: TestClient, tmp_path) -> None:
    src, dst = sqlite_project(api, "src", tmp_path / "s.db"), sqlite_project(api, "dst", tmp_path / "d.db")
    job = api.post("/api/jobs", json=job_body(src, dst)).json()
    run = api.post(f"/api/jobs/{job['id']}/execute").json()["execution_id"]
    with api.app.state.runtime.sessions() as session:
        row = session.get(ExecutionRow, run)
        row.status, row.error_message, row.error_trace = "failed", "boom", 'Traceback …\n  File "x.py", line 1'
        session.commit()
    editor = api.get(f"/api/executions/{run}/errors").json()
    assert editor["stack_trace"].startswith("Traceback") and editor["stack_trace_note"] is None
    seen = api.get(f"/api/executions/{run}/errors", headers=viewer(api)).json()
    assert seen["message"] == "boom" and seen["stack_trace"] is None
    assert "editor" in seen["stack_trace_note"]


def test_weaker_tls_or_another_user_needs_the_password_again(api: TestClient) -> None:
    pid = api.post("/api/projects", json={"name": "p", **PG, "password": SECRET,
                                          "options": {"sslmode": "verify-full", "sslpassword": "k"}}).json()["id"]
    for change in ({"options": {"sslmode": "disable", "sslpassword": "***"}}, {"username": "alice"},
                   {"engine": "mysql", "options": {}}, {"host": "DB.example", "options": {"sslmode": "verify-full",
                                                                                         "sslpassword": "new"}}):
        r = api.put(f"/api/projects/{pid}", json={"name": "p", **PG, **change})
        if change.get("host"):  # same host (names are case-insensitive), a new key passphrase: fine
            assert r.status_code == 200, r.text
            continue
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "password", (change, r.text)
    r = api.put(f"/api/projects/{pid}", json={"name": "p", **PG, "port": 5432, "options": {"sslmode": "verify-full"}})
    assert r.status_code == 200 and r.json()["has_password"] is True  # the default port is the same server
    r = api.put(f"/api/projects/{pid}", json={"name": "p", **PG, "password": "", "username": "alice"})
    assert r.status_code == 200 and r.json()["has_password"] is False  # "" removes the stored password


def test_removing_an_option_saved_before_the_allow_list_keeps_the_password(api: TestClient) -> None:
    from shared.store.models import ProjectRow

    box = api.app.state.runtime.box
    with api.app.state.runtime.sessions() as session:
        row = ProjectRow(name="old", engine="mysql", host="h", database="d", username="u",
                         password_enc=box.encrypt(SECRET), options={"init_command": "X"})
        session.add(row)
        session.commit()
        pid = row.id
    r = api.put(f"/api/projects/{pid}", json={"name": "old", **MY, "host": "h", "database": "d", "username": "u"})
    assert r.status_code == 200 and r.json()["options"] == {} and r.json()["has_password"] is True


def test_secrets_saved_in_clear_before_are_encrypted_at_start(api: TestClient) -> None:
    from shared.store.models import ProjectRow
    from shared.store.projects import encrypt_stored_secrets

    box = api.app.state.runtime.box
    with api.app.state.runtime.sessions() as session:
        session.add(ProjectRow(name="old", engine="postgresql", url=f"postgresql://u@h/d?sslmode=require&password={SECRET}",
                               options={"sslpassword": f"{SECRET}-2"}))
        session.add(ProjectRow(name="old2", engine="mysql", host="h", database="d", options={"passwd": SECRET}))
        session.commit()
        assert encrypt_stored_secrets(session, box) == 2 and encrypt_stored_secrets(session, box) == 0
        rows = session.scalars(sa.select(ProjectRow).order_by(ProjectRow.name)).all()
        spec, other = (project_snapshot(r).connection(box) for r in rows)
    assert other.password == SECRET and other.options == {}
    assert SECRET not in stored_dump(api)
    assert spec.password == SECRET and spec.options == {"sslpassword": f"{SECRET}-2"}
    assert build_url(spec).render_as_string(hide_password=False) == \
        f"postgresql+psycopg2://u:{SECRET}@h/d?sslmode=require&sslpassword={SECRET}-2"
