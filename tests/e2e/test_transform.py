"""The transformation step end to end: API → scheduler → extractor (DuckDB) → RabbitMQ → loader.

Users on PostgreSQL, orders on MariaDB. One job joins the two results and aggregates in
its transform (both results materialised in DuckDB) into a PostgreSQL table; another
only projects and filters the last step's result (streamed) into MariaDB; a third has a
transform that does not bind: its execution fails naming the transform, and its
destination is left as it was. Expected rows are computed in Python from the generated data.
"""
from __future__ import annotations

import random
from decimal import Decimal

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, counts, running_stack

pytestmark = pytest.mark.e2e

SUMMARY = """SELECT u.user_id, lower(u.email) AS email, coalesce(sum(o.amount), 0) AS lifetime_value,
       CASE WHEN count(o.order_id) > 3 THEN 'gold' ELSE 'std' END AS tier
FROM @result1 u LEFT JOIN @result2 o ON o.user_id = u.user_id
GROUP BY u.user_id, u.email"""
PROJECTION = "SELECT user_id AS id, upper(email) AS email_upper FROM @result1 WHERE user_id % 2 = 0"


def generate(seed: int = 17) -> tuple[list[tuple], list[tuple]]:
    rng = random.Random(seed)
    users = [(i, None if i % 11 == 0 else f"User{i}@Example.COM" if i % 3 else f"Zoë{i}@Ünï.org") for i in range(1, 61)]
    orders = [(i, rng.randint(1, 70), Decimal(rng.randint(1, 99_999)) / 100) for i in range(1, 301)]
    return users, orders


def expected_summary(users: list[tuple], orders: list[tuple]) -> dict[int, tuple]:
    out = {}
    for uid, email in users:
        mine = [amount for _, user_id, amount in orders if user_id == uid]
        out[uid] = (uid, email.lower() if email else None, sum(mine, Decimal(0)), "gold" if len(mine) > 3 else "std")
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    try:
        urls = {"users": dbs.pg(), "orders": dbs.mysql(), "warehouse": dbs.pg(), "mart": dbs.mysql()}
        with running_stack(tmp_path_factory.mktemp("transform"), dbs.pg(), unique_name("dmtransform")) as stack:
            client = Client(stack)
            projects = {name: client.project(name, url) for name, url in urls.items()}
            yield client, urls, projects
            client.close()
    finally:
        dbs.drop_all()


def load_sources(urls: dict[str, str], users: list[tuple], orders: list[tuple]) -> None:
    with connect(urls["users"]) as conn:
        conn.exec_driver_sql("CREATE TABLE users (user_id INTEGER PRIMARY KEY, email VARCHAR(200))")
        conn.exec_driver_sql("INSERT INTO users VALUES " + ", ".join(["(%s, %s)"] * len(users)),
                             tuple(v for row in users for v in row))
    with connect(urls["orders"]) as conn:
        conn.exec_driver_sql("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
                             " amount DECIMAL(10,2) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO orders VALUES " + ", ".join(["(%s, %s, %s)"] * len(orders)),
                             tuple(v for row in orders for v in row))
    with connect(urls["warehouse"]) as conn:
        conn.exec_driver_sql("CREATE TABLE summary (user_id INTEGER PRIMARY KEY, email TEXT,"
                             " lifetime_value NUMERIC(14,2) NOT NULL, tier TEXT NOT NULL)")
        conn.exec_driver_sql("INSERT INTO summary VALUES (999, 'kept@x', 1.00, 'std')")
    with connect(urls["mart"]) as conn:
        conn.exec_driver_sql("CREATE TABLE shouting (id INTEGER PRIMARY KEY, email_upper VARCHAR(200))"
                             " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")


def rows(url: str, sql: str) -> list[tuple]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).all()]


def test_transform_jobs_run_end_to_end_and_write_the_transformed_rows(env) -> None:
    client, urls, projects = env
    users, orders = generate()
    load_sources(urls, users, orders)
    steps = [{"name": "users", "project_id": projects["users"], "sql": "SELECT user_id, email FROM users"},
             {"name": "orders", "project_id": projects["orders"], "sql": "SELECT order_id, user_id, amount FROM orders"}]
    # Given a job whose transform joins the two results and aggregates (upsert into PostgreSQL)
    summary_id = client.create_job({"name": "Summary", "steps": steps, "transform": SUMMARY,
                                    "destination": {"project_id": projects["warehouse"], "table": "summary",
                                                    "mode": "upsert"}})
    # When it runs
    execution = client.run(summary_id)
    # Then the table holds the transformed rows, next to the row that was there
    assert execution["status"] == "completed", execution
    expected = expected_summary(users, orders)
    assert counts(execution)["rows_inserted"] == len(expected) and counts(execution)["rows_failed"] == 0
    got = {r[0]: r for r in rows(urls["warehouse"], "SELECT user_id, email, lifetime_value, tier FROM summary")}
    assert got == {**expected, 999: (999, "kept@x", Decimal("1.00"), "std")}

    # Given a job that only projects and filters the last step's result (streamed) into MariaDB
    shout_id = client.create_job({"name": "Shout", "steps": steps[:1], "transform": PROJECTION,
                                  "destination": {"project_id": projects["mart"], "table": "shouting",
                                                  "mode": "insert_only"}})
    execution = client.run(shout_id)
    assert execution["status"] == "completed", execution
    assert sorted(rows(urls["mart"], "SELECT id, email_upper FROM shouting")) == [
        (uid, email.upper() if email else None) for uid, email in users if uid % 2 == 0]


def test_a_transform_that_does_not_bind_fails_naming_the_transform_and_writes_nothing(env) -> None:
    client, urls, projects = env
    with connect(urls["warehouse"]) as conn:
        conn.exec_driver_sql("CREATE TABLE broken (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO broken VALUES (1, 'before')")
    job_id = client.create_job({
        "name": "Broken", "validate_before_execution": False, "max_retries": 0,
        "steps": [{"name": "ids", "project_id": projects["warehouse"], "sql": "SELECT 2 AS id"}],
        "transform": "SELECT id, no_such_column AS v FROM @result1",
        "destination": {"project_id": projects["warehouse"], "table": "broken", "mode": "truncate_load"}})
    execution = client.run(job_id)
    assert execution["status"] == "failed", execution
    message = execution["error"]["message"] if isinstance(execution["error"], dict) else execution["error"]
    assert message.startswith("the transform: Binder Error") and "no_such_column" in message, message
    assert rows(urls["warehouse"], "SELECT id, v FROM broken") == [(1, "before")]
