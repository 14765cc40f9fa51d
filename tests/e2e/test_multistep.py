"""Multi-step jobs across engines, built for real through the API and run by the running stack.

The product documentation's example 2, "Multi-DB Order Summary": users in PostgreSQL,
orders in MariaDB, web analytics in a second PostgreSQL database (the documentation's SQL
Server stands in as PostgreSQL here); three steps joined with ``@result1``/``@result2``;
written into ``dwh.customer_360`` on a PostgreSQL warehouse in ``upsert`` mode. The
expected table is computed in Python from the generated source rows, independently of
any SQL. Also: a three-step job on ONE project runs pushed down as one query (the source
database forbids CREATE TABLE, so a temporary table would fail the run), and the flow
graph of the job names each step's engine.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.conftest import MYSQL_URL, PG_URL, require_service, unique_name
from tests.e2e.harness import Client, Databases, connect, counts, running_stack

pytestmark = pytest.mark.e2e

STEP1 = """SELECT user_id, username, email, signup_date
FROM users
WHERE active = true"""
STEP2 = """SELECT
u.*,
COUNT(o.order_id) as order_count,
SUM(o.total_amount) as lifetime_value,
MAX(o.order_date) as last_order_date
FROM @result1 u
LEFT JOIN orders o ON u.user_id = o.user_id
WHERE o.status = 'completed'
GROUP BY u.user_id, u.username, u.email, u.signup_date"""
STEP3 = """SELECT
r.*,
a.total_sessions,
a.total_pageviews,
a.avg_session_duration
FROM @result2 r
LEFT JOIN web_analytics a ON r.user_id = a.user_id"""
COLUMNS = ("user_id", "username", "email", "signup_date", "order_count", "lifetime_value", "last_order_date",
           "total_sessions", "total_pageviews", "avg_session_duration")


def generate(seed: int = 42) -> dict[str, list[tuple]]:
    rng = random.Random(seed)
    names = ["ana", "zoë", "jürgen", "o'brien", "nação", "李雷", "bob"]
    users = [(i, f"{rng.choice(names)}_{i}", None if i % 17 == 0 else f"user{i}@example.com",
              date(2023, 1, 1) + timedelta(days=i), i % 5 != 0) for i in range(1, 121)]
    orders = [(i, rng.randint(1, 130), Decimal(rng.randint(100, 50_000)) / 100,
               datetime(2024, 1, 1) + timedelta(minutes=rng.randint(0, 500_000)),
               rng.choice(["completed", "completed", "cancelled", "pending"])) for i in range(1, 251)]
    analytics = [(i, rng.randint(1, 500), rng.randint(1, 5000), Decimal(rng.randint(100, 90_000)) / 100)
                 for i in range(1, 121) if i % 3]
    return {"users": users, "orders": orders, "analytics": analytics}


def reference(data: dict[str, list[tuple]]) -> dict[int, tuple]:
    """The documented job's result, in Python: active users with completed orders (the
    WHERE on o.status drops users without one), their order stats, and their analytics."""
    stats: dict[int, list] = {}
    for _, user_id, amount, when, status in data["orders"]:
        if status == "completed":
            s = stats.setdefault(user_id, [0, Decimal(0), None])
            s[0], s[1], s[2] = s[0] + 1, s[1] + amount, max(filter(None, (s[2], when)))
    web = {a[0]: a[1:] for a in data["analytics"]}
    return {uid: (uid, name, email, signup, *stats[uid], *web.get(uid, (None, None, None)))
            for uid, name, email, signup, active in data["users"] if active and uid in stats}


def read_destination(url: str) -> dict[int, tuple]:
    with connect(url) as conn:
        rows = conn.exec_driver_sql(f"SELECT {', '.join(COLUMNS)} FROM dwh.customer_360").all()
    return {r[0]: tuple(r) for r in rows}


def load_sources(urls: dict[str, str], data: dict[str, list[tuple]]) -> None:
    with connect(urls["users"]) as conn:
        conn.exec_driver_sql("CREATE TABLE users (user_id INTEGER PRIMARY KEY, username VARCHAR(100) NOT NULL,"
                             " email VARCHAR(200), signup_date DATE NOT NULL, active BOOLEAN NOT NULL)")
        conn.exec_driver_sql("INSERT INTO users VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(data["users"])),
                             tuple(v for row in data["users"] for v in row))
    with connect(urls["orders"]) as conn:
        conn.exec_driver_sql("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,"
                             " total_amount DECIMAL(10,2) NOT NULL, order_date DATETIME NOT NULL,"
                             " status VARCHAR(20) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO orders VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(data["orders"])),
                             tuple(v for row in data["orders"] for v in row))
    with connect(urls["analytics"]) as conn:
        conn.exec_driver_sql("CREATE TABLE web_analytics (user_id INTEGER PRIMARY KEY, total_sessions INTEGER,"
                             " total_pageviews INTEGER, avg_session_duration NUMERIC(10,2))")
        conn.exec_driver_sql("INSERT INTO web_analytics VALUES "
                             + ", ".join(["(%s, %s, %s, %s)"] * len(data["analytics"])),
                             tuple(v for row in data["analytics"] for v in row))
    with connect(urls["warehouse"]) as conn:
        conn.exec_driver_sql("CREATE SCHEMA dwh")
        conn.exec_driver_sql("CREATE TABLE dwh.customer_360 (user_id INTEGER PRIMARY KEY,"
                             " username VARCHAR(100) NOT NULL, email VARCHAR(200), signup_date DATE,"
                             " order_count BIGINT, lifetime_value NUMERIC(14,2), last_order_date TIMESTAMP,"
                             " total_sessions INTEGER, total_pageviews INTEGER, avg_session_duration NUMERIC(10,2))")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_service("PostgreSQL", PG_URL)
    require_service("MariaDB", MYSQL_URL)
    dbs = Databases()
    try:
        urls = {"users": dbs.pg(), "orders": dbs.mysql(), "analytics": dbs.pg(), "warehouse": dbs.pg(),
                "shop": dbs.pg()}
        with running_stack(tmp_path_factory.mktemp("multistep"), dbs.pg(), unique_name("dmmulti")) as stack:
            client = Client(stack)
            projects = {"users": client.project("Users DB", urls["users"]),
                        "orders": client.project("Orders DB", urls["orders"]),
                        "analytics": client.project("Analytics DB", urls["analytics"]),
                        "warehouse": client.project("Data Warehouse", urls["warehouse"]),
                        "shop": client.project("Shop DB", urls["shop"])}
            yield client, urls, projects
            client.close()
    finally:
        dbs.drop_all()


def test_multi_db_order_summary_matches_a_reference_computed_in_python(env) -> None:
    client, urls, projects = env
    # Given users in PostgreSQL, orders in MariaDB, analytics in another PostgreSQL database
    data = generate()
    load_sources(urls, data)
    expected = reference(data)
    assert 30 < len(expected) < 96  # the data exercises both the filter and the LEFT JOIN's NULLs
    assert any(row[7] is None for row in expected.values()) and any(row[2] is None for row in expected.values())
    # and the documented job, created through the API
    job_id = client.create_job({
        "name": "Multi-DB Order Summary", "schedule": "0 */6 * * *",
        "steps": [{"name": "Extract Users", "project_id": projects["users"], "sql": STEP1},
                  {"name": "Join Orders", "project_id": projects["orders"], "sql": STEP2},
                  {"name": "Add Web Analytics", "project_id": projects["analytics"], "sql": STEP3}],
        "destination": {"project_id": projects["warehouse"], "table": "dwh.customer_360", "mode": "upsert"}})

    # When it runs
    execution = client.run(job_id)
    # Then dwh.customer_360 equals the reference, and the history counts every row as inserted
    assert execution["status"] == "completed", execution
    assert counts(execution) == {"rows_read": len(expected), "rows_inserted": len(expected), "rows_updated": 0,
                                 "rows_skipped": 0, "rows_deleted": 0, "rows_failed": 0}
    assert read_destination(urls["warehouse"]) == expected

    # Given new facts: a completed order for a customer, a first completed order for another
    # active user, a changed e-mail, and a customer who became inactive
    known = sorted(expected)
    newcomer = next(u[0] for u in data["users"] if u[4] and u[0] not in expected)
    data["orders"] += [(901, known[0], Decimal("10.01"), datetime(2025, 6, 1, 12, 0), "completed"),
                       (902, newcomer, Decimal("5.00"), datetime(2025, 6, 2, 8, 30), "completed")]
    data["users"] = [(u[0], u[1], "changed@example.com" if u[0] == known[1] else u[2], u[3],
                      False if u[0] == known[2] else u[4]) for u in data["users"]]
    with connect(urls["orders"]) as conn:
        conn.exec_driver_sql("INSERT INTO orders VALUES (%s, %s, %s, %s, %s), (%s, %s, %s, %s, %s)",
                             (*data["orders"][-2], *data["orders"][-1]))
    with connect(urls["users"]) as conn:
        conn.exec_driver_sql("UPDATE users SET email = 'changed@example.com' WHERE user_id = %s", (known[1],))
        conn.exec_driver_sql("UPDATE users SET active = false WHERE user_id = %s", (known[2],))
    second = reference(data)
    # When it runs again
    execution = client.run(job_id)
    # Then upsert inserted the newcomer, updated the two changed customers, kept the rest,
    # and deleted nothing (the inactive customer's row stays, as upsert promises)
    assert execution["status"] == "completed", execution
    assert counts(execution) == {"rows_read": len(second), "rows_inserted": 1, "rows_updated": 2,
                                 "rows_skipped": len(second) - 3, "rows_deleted": 0, "rows_failed": 0}
    assert read_destination(urls["warehouse"]) == {**second, known[2]: expected[known[2]]}

    # And the flow graph shows three steps on their engines, chained by their references
    flow = client.http.get(f"/api/jobs/{job_id}/flow")
    assert flow.status_code == 200, flow.text
    nodes = flow.json()["nodes"]
    assert [(n["step"], n["name"], n["project_id"], n["engine"]) for n in nodes] == [
        (1, "Extract Users", projects["users"], "postgresql"), (2, "Join Orders", projects["orders"], "mysql"),
        (3, "Add Web Analytics", projects["analytics"], "postgresql")]
    assert [n["project_name"] for n in nodes] == ["Users DB", "Orders DB", "Analytics DB"]
    assert sorted((e["from"], e["to"]) for e in flow.json()["edges"]) == [(1, 2), (2, 3)]


def test_three_steps_on_one_project_run_as_one_query_and_are_right(env) -> None:
    client, urls, projects = env
    # Given a shop database on PostgreSQL that refuses to create any table (an event trigger),
    # so the run can only succeed if no temporary table is made
    rng = random.Random(5)
    products = [(i, f"product {i}", Decimal(rng.randint(100, 9_999)) / 100) for i in range(1, 41)]
    sales = [(i, rng.randint(1, 45), rng.randint(1, 9)) for i in range(1, 601)]
    with connect(urls["shop"]) as conn:
        conn.exec_driver_sql("CREATE TABLE products (product_id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                             " price NUMERIC(8,2) NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE sales (sale_id INTEGER PRIMARY KEY, product_id INTEGER, qty INTEGER)")
        conn.exec_driver_sql("INSERT INTO products VALUES " + ", ".join(["(%s, %s, %s)"] * len(products)),
                             tuple(v for r in products for v in r))
        conn.exec_driver_sql("INSERT INTO sales VALUES " + ", ".join(["(%s, %s, %s)"] * len(sales)),
                             tuple(v for r in sales for v in r))
        conn.exec_driver_sql("CREATE FUNCTION no_tables() RETURNS event_trigger LANGUAGE plpgsql AS "
                             "$$ BEGIN RAISE EXCEPTION USING MESSAGE = 'no tables here: ' || tg_tag; END $$")
        conn.exec_driver_sql("CREATE EVENT TRIGGER no_tables ON ddl_command_start"
                             " WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')"
                             " EXECUTE FUNCTION no_tables()")
    # (the guard works: a step joining another project's result cannot run there)
    r = client.http.post("/api/jobs/validate", json={"steps": [
        {"name": "ids", "project_id": projects["warehouse"], "sql": "SELECT 1 AS product_id"},
        {"name": "join", "project_id": projects["shop"],
         "sql": "SELECT * FROM @result1 i JOIN products USING (product_id)"}]})
    assert r.status_code == 200 and not r.json()["ok"] and "no tables here" in str(r.json()["checks"]), r.text
    with connect(urls["warehouse"]) as conn:
        conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS dwh")
        conn.exec_driver_sql("CREATE TABLE dwh.product_revenue (product_id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                             " units BIGINT NOT NULL, revenue NUMERIC(14,2) NOT NULL)")
    shop = projects["shop"]
    job_id = client.create_job({
        "name": "Product revenue (pushdown)",
        "steps": [{"name": "units per product", "project_id": shop,
                   "sql": "SELECT product_id, sum(qty) AS units FROM sales GROUP BY product_id"},
                  {"name": "priced", "project_id": shop,
                   "sql": "SELECT p.product_id, p.name, u.units, u.units * p.price AS revenue"
                          " FROM @result1 u JOIN products p ON p.product_id = u.product_id"},
                  {"name": "best sellers", "project_id": shop,
                   "sql": "SELECT r.* FROM @RESULT2 r WHERE r.units >= (SELECT avg(units) FROM @result1)"}],
        "destination": {"project_id": projects["warehouse"], "table": "dwh.product_revenue", "mode": "upsert"}})
    # When it runs
    execution = client.run(job_id)
    # Then it completed (no table was created on the source) and the rows are the reference
    assert execution["status"] == "completed", (execution, client.errors(execution["id"]))
    units: dict[int, int] = {}
    for _, pid, qty in sales:
        units[pid] = units.get(pid, 0) + qty
    average = Decimal(sum(units.values())) / len(units)  # over every sold product id, known or not
    price = {p[0]: (p[1], p[2]) for p in products}
    expected = sorted((pid, price[pid][0], n, n * price[pid][1]) for pid, n in units.items()
                      if pid in price and n >= average)
    with connect(urls["warehouse"]) as conn:
        got = [tuple(r) for r in conn.exec_driver_sql(
            "SELECT product_id, name, units, revenue FROM dwh.product_revenue ORDER BY product_id").all()]
    assert 5 < len(expected) < 40 and got == expected
    assert execution["rows_read"] == execution["rows_inserted"] == len(expected)
    # And the flow has the three steps on one engine with all three references as edges
    flow = client.http.get(f"/api/jobs/{job_id}/flow").json()
    assert [n["engine"] for n in flow["nodes"]] == ["postgresql"] * 3
    assert sorted((e["from"], e["to"]) for e in flow["edges"]) == [(1, 2), (1, 3), (2, 3)]
