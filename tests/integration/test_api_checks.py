"""Preview and validation through the HTTP API against real PostgreSQL and MariaDB.

The API runs in-process (SQLite metadata, in-memory transport, the test token); the
projects are real databases. Every answer is checked the way a user reads it: the step's
columns and rows, each check's message; and after every call the databases are compared
with a snapshot taken before it (tables and row counts): nothing is written, anywhere.
"""
from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tests.unit.api_fixtures import api  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration
USERS = 150


def snapshot(url: str) -> dict[str, int]:
    """Every user table (schema-qualified on PostgreSQL) with its row count."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            schemas = [None] if engine.dialect.name == "mysql" else [
                s for s in inspector.get_schema_names() if s not in ("information_schema",) and not s.startswith("pg_")]
            out = {}
            for schema in schemas:
                for table in inspector.get_table_names(schema=schema):
                    name = f"{schema}.{table}" if schema else table
                    q = '"' if engine.dialect.name == "postgresql" else "`"
                    full = f"{q}{schema}{q}.{q}{table}{q}" if schema else f"{q}{table}{q}"
                    out[name] = conn.exec_driver_sql(f"SELECT count(*) FROM {full}").scalar_one()
            return out
    finally:
        engine.dispose()


def run_sql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


class World:
    """Users on PostgreSQL, orders on MariaDB, a PostgreSQL warehouse; projects created over HTTP."""

    def __init__(self, api, pg_url: str, mysql_url: str, warehouse_url: str) -> None:  # noqa: F811
        self.api, self.urls = api, {"pg": pg_url, "mysql": mysql_url, "warehouse": warehouse_url}
        users = ", ".join(f"({i}, 'user {i}', {str(i % 4 != 0).lower()})" for i in range(1, USERS + 1))
        run_sql(pg_url, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, active BOOLEAN NOT NULL)",
                f"INSERT INTO users VALUES {users}")
        orders = ", ".join(f"({i}, {i % 40 + 1}, {i * 1.5:.2f})" for i in range(1, 301))
        run_sql(mysql_url, "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
                           " amount DECIMAL(10,2) NOT NULL)", f"INSERT INTO orders VALUES {orders}")
        run_sql(warehouse_url,
                "CREATE TABLE user_totals (id INTEGER PRIMARY KEY, name TEXT NOT NULL, orders BIGINT,"
                " total NUMERIC(12,2))",
                "CREATE TABLE no_key (id INTEGER, name TEXT)",
                "CREATE TABLE synced (id INTEGER PRIMARY KEY, name TEXT)",
                "INSERT INTO synced SELECT g, 'old ' || g FROM generate_series(1, 10) g")
        self.pid = {name: self.project(name, url) for name, url in self.urls.items()}

    def project(self, name: str, url: str) -> int:
        engine = "mysql" if url.startswith("mysql") else "postgresql"
        u = sa.engine.make_url(url)
        r = self.api.post("/api/projects", json={"name": name, "engine": engine, "host": u.host, "port": u.port,
                                                 "database": u.database, "username": u.username,
                                                 "password": u.password or ""})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def snapshots(self) -> dict[str, dict[str, int]]:
        return {name: snapshot(url) for name, url in self.urls.items()}

    def step(self, name: str, where: str, sql: str) -> dict:
        return {"name": name, "project_id": self.pid[where], "sql": sql}

    def good_steps(self) -> list[dict]:
        return [self.step("active users", "pg", "SELECT id, name FROM users WHERE active ORDER BY id"),
                self.step("order totals", "mysql",
                          "SELECT u.id, u.name, COUNT(o.id) AS orders, SUM(o.amount) AS total FROM @result1 u"
                          " JOIN orders o ON o.user_id = u.id GROUP BY u.id, u.name ORDER BY u.id")]

    def destination(self, table: str = "user_totals", mode: str = "upsert", **extra: object) -> dict:
        return {"project_id": self.pid["warehouse"], "table": table, "mode": mode, **extra}


@pytest.fixture
def world(api, pg_database: Callable[[], str], mysql_database: Callable[[], str]) -> World:  # noqa: F811
    return World(api, pg_database(), mysql_database(), pg_database())


def failed(checks: list[dict]) -> list[dict]:
    return [c for c in checks if not c["ok"]]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- preview
def test_preview_of_an_unsaved_cross_engine_job_shows_each_step_and_writes_nothing(world: World) -> None:
    before = world.snapshots()
    r = world.api.post("/api/jobs/preview", json={"steps": world.good_steps(), "destination": world.destination()})
    assert r.status_code == 200, r.text
    first, second = r.json()["steps"]
    # step 1: columns with types, the first 100 rows by default, every row counted
    assert [c["name"] for c in first["columns"]] == ["id", "name"] and first["error"] is None
    assert len(first["rows"]) == 100 and first["row_count"] == sum(1 for i in range(1, USERS + 1) if i % 4)
    assert first["rows"][:2] == [[1, "user 1"], [2, "user 2"]] and first["elapsed_ms"] >= 0
    # step 2 joined step 1's result on MariaDB
    expected = {}
    for i in range(1, 301):
        uid = i % 40 + 1
        if uid % 4:
            n, total = expected.get(uid, (0, 0.0))
            expected[uid] = (n + 1, total + i * 1.5)
    assert [c["name"] for c in second["columns"]] == ["id", "name", "orders", "total"]
    assert second["row_count"] == len(expected)
    assert [(row[0], row[2], float(row[3])) for row in second["rows"]] == [
        (uid, n, round(total, 2)) for uid, (n, total) in sorted(expected.items())]
    assert r.json()["destination"] and not failed(r.json()["destination"])
    assert world.snapshots() == before


def test_preview_limit_defaults_to_100_and_is_at_most_1000(world: World) -> None:
    body = {"steps": [world.step("all users", "pg", "SELECT id FROM users")]}
    assert len(world.api.post("/api/jobs/preview", json=body).json()["steps"][0]["rows"]) == 100
    assert len(world.api.post("/api/jobs/preview", params={"limit": 5}, json=body).json()["steps"][0]["rows"]) == 5
    r = world.api.post("/api/jobs/preview", params={"limit": 1000}, json=body)
    assert r.status_code == 200 and len(r.json()["steps"][0]["rows"]) == USERS
    for bad in (1001, 0):
        r = world.api.post("/api/jobs/preview", params={"limit": bad}, json=body)
        assert r.status_code == 422, r.text
        assert "limit" in str(r.json()["detail"])


def test_a_saved_job_validates_and_previews_like_an_unsaved_one(world: World) -> None:
    r = world.api.post("/api/jobs", json={"name": "user totals", "steps": world.good_steps(),
                                          "destination": world.destination()})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    before = world.snapshots()
    validation = world.api.post(f"/api/jobs/{job_id}/validate").json()
    assert validation["ok"] is True, validation
    checks = {c["check"]: c["message"] for c in validation["checks"]}
    assert any(k.startswith("source reachable") for k in checks) and "destination reachable" in checks
    assert checks["key"] == "key of user_totals: (id)"
    preview = world.api.post(f"/api/jobs/{job_id}/preview", params={"limit": 3}).json()
    assert [len(s["rows"]) for s in preview["steps"]] == [3, 3]
    assert world.snapshots() == before
    assert world.api.post(f"/api/jobs/{job_id}/preview", params={"limit": 1001}).status_code == 422


# ----------------------------------------------------------------------------- failure kinds
FAILURES = {
    # kind: (steps, destination overrides, words the failed check's message must hold)
    "syntax error": ([("pg", "SELECT id, name FROM users WHERE")], {}, ["step 1", "syntax error"]),
    "missing table": ([("pg", "SELECT id, name FROM no_such_table")], {}, ["step 1", "no_such_table"]),
    "missing table on MariaDB": ([("mysql", "SELECT id FROM no_such_orders")], {}, ["step 1", "no_such_orders"]),
    "bad @result reference": ([("pg", "SELECT id, name FROM users"), ("pg", "SELECT * FROM @result3")], {},
                              ["step 2", "@result3", "missing step"]),
    "destination table missing": ([("pg", "SELECT id, name FROM users")], {"table": "nowhere"},
                                  ["destination table nowhere does not exist"]),
    "column mismatch": ([("pg", "SELECT id, name, active AS flag FROM users")], {},
                        ["source columns missing in destination table user_totals: flag"]),
    "missing key for upsert": ([("pg", "SELECT id, name FROM users")], {"table": "no_key"},
                               ["upsert into no_key needs a key"]),
    "key column not in the source": ([("pg", "SELECT name FROM users")], {},
                                     ["lacks key column(s) of user_totals: id"]),
}


@pytest.mark.parametrize("kind", list(FAILURES))
def test_each_failure_kind_is_reported_with_a_clear_message_and_nothing_is_written(world: World, kind: str) -> None:
    specs, overrides, words = FAILURES[kind]
    steps = [world.step(f"s{i}", where, sql) for i, (where, sql) in enumerate(specs, start=1)]
    body = {"steps": steps, "destination": world.destination(**overrides)}
    before = world.snapshots()

    validation = world.api.post("/api/jobs/validate", json=body)
    assert validation.status_code == 200, validation.text
    assert validation.json()["ok"] is False
    messages = " | ".join(c["message"] for c in failed(validation.json()["checks"]))
    assert all(w in messages for w in words), (kind, validation.json()["checks"])

    preview = world.api.post("/api/jobs/preview", json=body)
    assert preview.status_code == 200, preview.text
    out = preview.json()
    problems = [s["error"] for s in out["steps"] if s["error"]]
    problems += [c["message"] for c in failed(out["destination"] or [])]
    assert problems and all(w in " | ".join(problems) for w in words), (kind, out)
    assert world.snapshots() == before


def test_an_unreachable_source_is_named_and_does_not_hide_the_other_checks(world: World) -> None:
    down = world.project("down", f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/nowhere")
    body = {"steps": [{"name": "from nowhere", "project_id": down, "sql": "SELECT id, name FROM users"}],
            "destination": world.destination()}
    checks = world.api.post("/api/jobs/validate", json=body).json()["checks"]
    bad = failed(checks)
    assert bad[0]["check"] == f"source reachable: project {down} (postgresql)"
    assert "project “down” is unreachable" in bad[0]["message"] and "refused" in bad[0]["message"].lower()
    assert any("step 1 'from nowhere'" in c["check"] and "project “down” is unreachable" in c["message"] for c in bad)
    preview = world.api.post("/api/jobs/preview", json=body).json()
    error = preview["steps"][0]["error"]
    assert "step 1 'from nowhere'" in error and "connection refused" in error.lower(), error


def test_a_saved_job_cannot_reference_a_later_step(world: World) -> None:
    r = world.api.post("/api/jobs", json={"name": "bad ref", "steps": [
        world.step("first", "pg", "SELECT * FROM @result2"), world.step("second", "pg", "SELECT 1 AS id")],
        "destination": world.destination()})
    assert r.status_code == 422
    assert "@result2 refers to a later step" in str(r.json()["detail"])


# ----------------------------------------------------------------------------- sync_delete impact
def impact(checks: list[dict] | None) -> dict:
    found = [c for c in checks or [] if c["check"] == "sync_delete impact"]
    assert len(found) == 1, checks
    return found[0]


def test_validation_and_preview_tell_how_many_rows_a_sync_delete_would_delete(world: World) -> None:
    # Given a destination with ids 1..10 and a MariaDB source holding ids 1..7 and 11
    run_sql(world.urls["mysql"], "CREATE TABLE current_ids (id INTEGER PRIMARY KEY, name TEXT)",
            "INSERT INTO current_ids VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e'),(6,'f'),(7,'g'),(11,'k')")
    steps = [world.step("current", "mysql", "SELECT id AS ID, name FROM current_ids")]
    before = world.snapshots()

    # When a sync_delete job is validated and previewed; Then both say 3 of the 10 rows would go
    body = {"steps": steps, "destination": world.destination("synced", "sync_delete")}
    validation = world.api.post("/api/jobs/validate", json=body).json()
    assert validation["ok"] is True
    assert impact(validation["checks"]) == {"check": "sync_delete impact", "ok": True,
                                            "message": "would delete 3 of 10 destination rows"}
    assert impact(world.api.post("/api/jobs/preview", json=body).json()["destination"])["message"] == \
        "would delete 3 of 10 destination rows"

    # When the job caps deletes at 20% (3 of 11 rows after the upsert is 27%); Then it fails
    body["destination"]["max_delete_ratio"] = 0.2
    validation = world.api.post("/api/jobs/validate", json=body).json()
    assert validation["ok"] is False
    check = impact(validation["checks"])
    assert not check["ok"] and "would delete 3 of 10 destination rows" in check["message"]
    assert "cap of 20.0%" in check["message"]
    body["destination"]["max_delete_ratio"] = 0.3
    assert world.api.post("/api/jobs/validate", json=body).json()["ok"] is True

    # When the source is empty; Then it fails unless the job allows an empty source
    body = {"steps": [world.step("none", "mysql", "SELECT id, name FROM current_ids WHERE id < 0")],
            "destination": world.destination("synced", "sync_delete")}
    check = impact(world.api.post("/api/jobs/validate", json=body).json()["checks"])
    assert not check["ok"] and "source returns no rows" in check["message"]
    assert "allow an empty source" in check["message"]
    body["destination"]["allow_empty_source"] = True
    check = impact(world.api.post("/api/jobs/preview", json=body).json()["destination"])
    assert check == {"check": "sync_delete impact", "ok": True, "message": "would delete 10 of 10 destination rows"}

    # And other modes get no impact check; nothing was written anywhere
    body = {"steps": steps, "destination": world.destination("synced", "upsert")}
    assert not [c for c in world.api.post("/api/jobs/validate", json=body).json()["checks"]
                if c["check"] == "sync_delete impact"]
    assert world.snapshots() == before


def test_sync_delete_impact_of_a_saved_cross_engine_job(world: World) -> None:
    # Given a saved job whose final step on PostgreSQL joins a MariaDB result
    r = world.api.post("/api/jobs", json={
        "name": "sync users", "steps": [
            world.step("buyers", "mysql", "SELECT DISTINCT user_id FROM orders"),
            world.step("named buyers", "pg", "SELECT u.id, u.name FROM @result1 b JOIN users u ON u.id = b.user_id"
                                             " WHERE u.id <= 8")],
        "destination": world.destination("synced", "sync_delete", max_delete_ratio=0.5)})
    assert r.status_code == 201, r.text
    before = world.snapshots()
    # When it is validated; Then ids 9 and 10 of the destination would be deleted
    validation = world.api.post(f"/api/jobs/{r.json()['id']}/validate").json()
    assert validation["ok"] is True, validation
    assert impact(validation["checks"])["message"] == "would delete 2 of 10 destination rows"
    assert world.snapshots() == before


def test_sync_delete_impact_is_not_computed_past_its_cap(world: World) -> None:
    from decimal import Decimal

    from shared.load.destination import sync_delete_impact
    from shared.types import Column

    engine = sa.create_engine(world.urls["warehouse"])
    try:
        columns = [Column("id", "int"), Column("name", "text")]
        kwargs = {"table": "synced", "columns": columns, "key_columns": None}
        # the destination holds 10 rows: past a cap of 5 it is not read to the end
        check = sync_delete_impact(engine, **kwargs, source_keys=lambda pos: [(1,)], cap=5)
        assert check == {"check": "sync_delete impact", "ok": True,
                         "message": "not computed: synced holds more than 5 rows"}
        # a source past the cap likewise; at the cap, the keys compare (decimal 2 is key 2)
        many = lambda pos: iter([(i,) for i in range(1, 12)])  # noqa: E731
        assert "the source returns more than 10 rows" in sync_delete_impact(engine, **kwargs, source_keys=many,
                                                                            cap=10)["message"]
        check = sync_delete_impact(engine, **kwargs, source_keys=lambda pos: [(Decimal(2),), (3,)], cap=10)
        assert check["message"] == "would delete 8 of 10 destination rows"
    finally:
        engine.dispose()
