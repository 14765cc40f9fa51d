"""A user does everything through the page, against the running system and real databases.

Given the system running as one process (``datamig serve all``, PostgreSQL metadata) and a
PostgreSQL and a MariaDB database with data, when a user works in Chromium, then what they
see (rows, badges, counts, errors) and what lands in the destination tables agree.
"""
from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.browser.conftest import NARROW, TOKEN, Page
from tests.fixtures.databases import Databases
from tests.e2e.stack import Stack

pytestmark = pytest.mark.timeout(240)  # and "browser", by directory (tests/conftest.py)
CUSTOMERS = [(i, f"Customer {i}", "EU" if i % 2 else "US", i <= 10) for i in range(1, 13)]  # 11, 12 inactive
REFUNDED = {3, 7}  # a -1000.00 refund makes their total negative


def orders() -> list[tuple]:
    rows, oid = [], 0
    for cid in range(1, 10):  # customer 10 has no order (LEFT JOIN keeps it)
        for amount in (Decimal("10.50") * cid, Decimal("5.25")):
            oid += 1
            rows.append((oid, cid, amount))
        if cid in REFUNDED:
            oid += 1
            rows.append((oid, cid, Decimal("-1000.00")))
    return rows


def expected_totals() -> list[tuple]:
    out = []
    for cid, name, region, active in CUSTOMERS:
        if active:
            mine = [a for _, c, a in orders() if c == cid]
            out.append((cid, name, region, len(mine), sum(mine, Decimal("0.00"))))
    return out


STEP1_SQL = ("SELECT c.id, c.name, c.region\nFROM customers c\nCROSS JOIN pg_sleep(0.8) AS pause  -- slow enough to see it run\n"
             "WHERE c.active")
STEP2_SQL = ("SELECT r.id, r.name, r.region,\n       COUNT(o.id) AS order_count,\n       COALESCE(SUM(o.amount), 0) AS total_amount\n"
             "FROM @result1 r\nLEFT JOIN orders o ON o.customer_id = r.id\nGROUP BY r.id, r.name, r.region")


@pytest.fixture(scope="module")
def sources(module_databases: Databases) -> dict:
    """A PostgreSQL database (customers + destination tables) and a MariaDB one (orders)."""
    pg_url, my_url = module_databases.pg(), module_databases.mysql()
    pg = sa.create_engine(pg_url)
    with pg.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id INT PRIMARY KEY, name TEXT NOT NULL, region TEXT, active BOOLEAN NOT NULL)")
        conn.execute(sa.text("INSERT INTO customers VALUES (:i, :n, :r, :a)"),
                     [dict(zip("inra", c)) for c in CUSTOMERS])
        conn.exec_driver_sql("CREATE TABLE customer_totals (id INT PRIMARY KEY, name TEXT NOT NULL, region TEXT,"
                             " order_count INT NOT NULL, total_amount NUMERIC(12,2) NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE good_customers (id INT PRIMARY KEY, name TEXT NOT NULL, region TEXT,"
                             " order_count INT NOT NULL, total_amount NUMERIC(12,2) NOT NULL CHECK (total_amount >= 0))")
    pg.dispose()
    my = sa.create_engine(my_url)
    with my.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, amount DECIMAL(10,2) NOT NULL)")
        conn.execute(sa.text("INSERT INTO orders VALUES (:i, :c, :a)"), [dict(zip("ica", o)) for o in orders()])
    my.dispose()
    return {"pg": pg_url, "mysql": my_url}


def read(url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT id, name, region, order_count, total_amount FROM {table} ORDER BY id").all()
    engine.dispose()
    return [tuple(r) for r in rows]


def create_project(web: Page, *, name: str, engine_label: str, url: str) -> None:
    page = web.open("#/projects")
    page.get_by_role("link", name="New project").click()
    u = make_url(url)
    page.get_by_label("Name (required)").fill(name)
    page.get_by_label("Engine").select_option(label=engine_label)
    page.get_by_label("Host", exact=True).fill(u.host)
    page.get_by_label("Port").fill(str(u.port))
    page.get_by_label("Database", exact=True).fill(u.database)
    page.get_by_label("Username").fill(u.username or "")
    if u.password:
        page.get_by_label("Password").fill(u.password)
    # the settings can be tried before they are saved
    page.get_by_role("button", name="Test connection").click()
    page.locator(".project-form .test-result", has_text="Connected").wait_for()
    page.get_by_role("button", name="Save").click()
    page.locator("tr.project-row", has_text=name).wait_for()


def step(page, n: int):
    return page.locator("fieldset.step").nth(n - 1)


def badge_of(row) -> object:
    return row.locator(".badge")


def test_a_user_builds_a_cross_engine_job_previews_runs_and_reads_its_errors(web: Page, web_api: httpx.Client, sources: dict) -> None:
    from playwright.sync_api import expect

    # Given two projects created in the page, whose connections test fine
    create_project(web, name="Shop PostgreSQL", engine_label="PostgreSQL", url=sources["pg"])
    create_project(web, name="Orders MariaDB", engine_label="MySQL / MariaDB", url=sources["mysql"])
    page = web.page
    for name in ("Shop PostgreSQL", "Orders MariaDB"):
        row = page.locator("tr.project-row", has_text=name)
        row.get_by_role("button", name=f"Test connection of {name}").click()
        expect(row.locator(".test-result")).to_have_text(re.compile(r"✓ Connected"))
    expect(page.locator("tr.project-row", has_text="Shop PostgreSQL")).to_contain_text("postgres@")
    web.shot("01-projects")

    # When they write a two-step job in the editor: users from PostgreSQL, joined with MariaDB orders
    web.open("#/jobs")
    page.get_by_role("link", name="Create New Migration Job").click()
    page.get_by_label("Name (required)").fill("Customer totals")
    page.get_by_label("Description").first.fill("Customers from the shop with their order totals")
    s1 = step(page, 1)
    s1.get_by_label("Step name").fill("Active customers")
    s1.get_by_label("Project").select_option(label="Shop PostgreSQL (postgresql)")
    s1.get_by_label("SQL query of step 1").fill(STEP1_SQL)
    expect(s1.locator(".sql-gutter > div")).to_have_count(4)  # line numbers follow the text
    page.get_by_role("button", name="Add Query Step").click()
    s2 = step(page, 2)
    expect(s2.get_by_label("Step name")).to_be_focused()
    s2.get_by_label("Step name").fill("Join orders")
    s2.get_by_label("Project").select_option(label="Orders MariaDB (mysql)")
    s2.get_by_label("SQL query of step 2").fill(STEP2_SQL)
    # Then the flow diagram shows step 2 reading @result1, across the two engines
    flow = page.locator(".flow")
    expect(flow.locator(".flow-edge-label")).to_have_text(["@result1"])
    expect(flow.locator(".flow-text")).to_contain_text("Step 2 “Join orders” on Orders MariaDB reads @result1")

    # When they preview step 2 alone, then its columns, rows, count and time show
    s2.get_by_role("button", name="Preview Query").click()
    result = s2.locator(".step-result")
    expect(result.locator(".row-count")).to_have_text("10 rows", timeout=30_000)
    expect(result.locator("thead")).to_contain_text("total_amount")
    expect(result.locator("tbody tr")).to_have_count(10)
    expect(result.locator(".preview-stats")).to_contain_text(re.compile(r"5 columns · [\d.,]+ ms"))

    # When they choose the destination, then a destructive mode warns in words
    page.get_by_label("Destination project").select_option(label="Shop PostgreSQL (postgresql)")
    page.get_by_label("Destination table").fill("customer_totals")
    page.get_by_label("Migration mode").select_option("truncate_load")
    expect(page.locator(".mode-warning")).to_contain_text("deletes data")
    page.get_by_label("Migration mode").select_option("insert_only")
    expect(page.locator(".mode-warning")).to_be_hidden()
    expect(flow.locator(".flow-destination")).to_contain_text("customer_totals")
    web.shot_of(page.locator("section", has=flow), "02a-flow-diagram")

    # And the job-level preview checks the destination table
    page.locator("#preview-job").click()
    panel = page.locator(".preview-panel")
    expect(panel.locator(".destination-check h4")).to_have_text("✓ Destination check passed", timeout=30_000)
    expect(panel.locator(".step-result")).to_have_count(2)
    # And the schedule shows its next five runs in the job's time zone
    page.get_by_label("Schedule (cron)").fill("0 2 * * *")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    expect(page.locator(".schedule-description")).to_have_text("Daily at 02:00")
    expect(page.locator(".next-runs li")).to_have_count(5)
    expect(page.locator(".next-runs li").first).to_contain_text("02:00")
    page.get_by_role("button", name="Validate").click()
    expect(page.locator(".validate-panel h3")).to_have_text("✓ Every check passed", timeout=30_000)
    web.shot("02-job-editor-preview")
    page.get_by_role("button", name="Save").click()

    # Then the jobs list shows it with projects, table, schedule and no execution yet
    row = page.locator("tr.job-row", has_text="Customer totals")
    expect(row).to_contain_text("Shop PostgreSQL, Orders MariaDB → Shop PostgreSQL")
    expect(row).to_contain_text("customer_totals")
    expect(row).to_contain_text("Daily at 02:00 (Europe/Berlin)")
    expect(badge_of(row)).to_have_text("Never run")

    # When they execute it and follow the link to the history
    row.get_by_role("button", name="Execute Customer totals").click()
    page.get_by_role("link", name="Watch it in the history").click()
    history_row = page.locator("tr.execution-row").first
    # Then the row updates live from queued/running to completed, with its counts
    expect(badge_of(history_row)).to_have_text(re.compile("Queued|Running"))
    expect(badge_of(history_row)).to_have_text(re.compile("Completed"), timeout=60_000)
    expect(history_row.locator(".rows-read")).to_have_text("10")
    expect(history_row.locator(".rows-written")).to_have_text("10")
    expect(history_row.locator(".rows-failed")).to_have_text("0")
    expect(history_row).to_contain_text("manual")
    web.shot("03-history-completed")
    assert read(sources["pg"], "customer_totals") == expected_totals()

    # When they edit the job to load a table whose CHECK rejects negative totals, and run it
    web.open("#/jobs")
    page.get_by_role("link", name="Edit Customer totals").click()
    page.get_by_label("Destination table").fill("good_customers")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Execute Customer totals").click()
    page.get_by_role("link", name="Watch it in the history").click()
    # Then it ends as a partial success, and its error details list the rejected rows
    partial = page.locator("tr.execution-row").first
    expect(badge_of(partial)).to_have_text(re.compile("Partial success"), timeout=60_000)
    expect(partial.locator(".rows-written")).to_have_text("8")
    expect(partial.locator(".rows-failed")).to_have_text(str(len(REFUNDED)))
    expect(page.locator("tr.execution-row")).to_have_count(2)
    partial.get_by_role("link", name=re.compile("Error details")).click()
    expect(page.locator("#rows-h")).to_have_text(f"Failed rows ({len(REFUNDED)})")
    failed = page.locator("tr.failed-row")
    expect(failed).to_have_count(len(REFUNDED))
    expect(failed.first.locator(".failed-error")).to_contain_text(re.compile("check", re.I))
    expect(page.locator(".failed-rows thead")).to_contain_text("total_amount")
    expect(page.locator(".metrics")).to_contain_text("Partial success")
    expect(page.locator("#verify-h")).to_have_text("Verification: count · passed")  # the default, before COMMIT
    expect(page.locator(".verify-counts")).to_contain_text(f"Rows failed (not expected){len(REFUNDED)}")
    web.shot("04-execution-error-details")
    assert read(sources["pg"], "good_customers") == [r for r in expected_totals() if r[0] not in REFUNDED]
    failed_ids = {int(t) for t in failed.locator("td:nth-child(3)").all_inner_texts()}
    assert failed_ids == REFUNDED


def test_the_editor_shows_api_errors_next_to_their_fields(web: Page, web_api: httpx.Client, sources: dict) -> None:
    from playwright.sync_api import expect

    # Given a project to read from
    u = make_url(sources["pg"])
    r = web_api.post("/api/projects", json={"name": "Errors PG", "engine": "postgresql", "host": u.host, "port": u.port,
                                        "database": u.database, "username": u.username, "password": "s3cret-pw"})
    assert r.status_code == 201, r.text
    # Then its password is write-only: the edit page never shows it, and says one is stored
    page = web.open(f"#/projects/{r.json()['id']}")
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.locator('[data-field="password"] .hint')).to_contain_text("A password is stored")
    assert "s3cret-pw" not in page.content()
    page = web.open("#/jobs/new")
    # When they save a job with no name, an empty step SQL, no destination project and a bad table name
    step(page, 1).get_by_label("Project").select_option(label="Errors PG (postgresql)")
    page.get_by_label("Destination table").fill("bad table!")
    page.get_by_label("Max retries").fill("11")
    page.get_by_label("Schedule (cron)").fill("0 2 * *")
    expect(page.locator(".schedule-info .field-error")).to_contain_text("5 fields")
    page.get_by_role("button", name="Save").click()
    # Then each message appears next to its field, and a summary lists them all
    def error_at(field: str):
        return page.locator(f'[data-field="{field}"] > .field-error')
    expect(error_at("name")).to_contain_text("at least 1 character")
    expect(error_at("steps.0.sql")).to_contain_text("SQL must not be empty")
    expect(error_at("destination.table")).to_contain_text("schema.table")
    expect(error_at("destination.project_id")).to_be_visible()
    expect(error_at("max_retries")).to_contain_text("10")
    expect(error_at("schedule")).to_contain_text("5 fields")
    expect(page.locator(".summary")).to_be_focused()
    expect(page.get_by_label("Name (required)")).to_have_attribute("aria-invalid", "true")
    web.shot("05-job-editor-field-errors")
    # When a step references a result that does not exist yet, then Validate and Save say so
    page.get_by_label("Destination project").select_option(label="Errors PG (postgresql)")
    page.get_by_label("Destination table").fill("customer_totals")
    step(page, 1).get_by_label("SQL query of step 1").fill("SELECT * FROM @result2")
    page.get_by_role("button", name="Validate").click()
    expect(page.locator(".validate-panel h3")).to_have_text("✕ Some checks failed")
    expect(page.locator(".validate-panel .check-fail").first).to_contain_text("@result2 refers to a missing step")
    page.get_by_label("Name (required)").fill("Broken reference")
    page.get_by_label("Max retries").fill("3")
    page.get_by_label("Schedule (cron)").fill("")
    page.get_by_role("button", name="Save").click()
    expect(error_at("steps")).to_contain_text("@result2 refers to a missing step")
    expect(error_at("name")).to_have_count(0)
    # And steps reorder with the keyboard-reachable buttons, keeping focus on the moved step
    page.get_by_role("button", name="Add Query Step").click()
    step(page, 2).get_by_label("Step name").fill("Second")
    step(page, 2).get_by_role("button", name="Move step 2 up").click()
    expect(step(page, 1).get_by_label("Step name")).to_have_value("Second")
    expect(step(page, 1).get_by_role("button", name="Move step 1 down")).to_be_focused()
    step(page, 1).get_by_role("button", name="Remove step 1").click()
    expect(page.locator("fieldset.step")).to_have_count(1)


def test_the_jobs_list_toggles_enabled_and_deletes_after_a_confirmation_that_keeps_history(
        web: Page, web_api: httpx.Client, sources: dict) -> None:
    from playwright.sync_api import expect

    u = make_url(sources["pg"])
    pid = web_api.post("/api/projects", json={"name": "Toggle PG", "url": f"postgresql://{u.username}@{u.host}:{u.port}/{u.database}"}).json()["id"]
    job = web_api.post("/api/jobs", json={"name": "Nightly copy", "schedule": "0 3 * * *",
                                      "steps": [{"name": "one", "project_id": pid, "sql": "SELECT id, name FROM customers"}],
                                      "destination": {"project_id": pid, "table": "customer_totals"}}).json()
    page = web.open("#/jobs")
    row = page.locator("tr.job-row", has_text="Nightly copy")
    switch = row.get_by_role("switch", name="Enabled: Nightly copy")
    expect(switch).not_to_be_checked()
    switch.check()
    expect(page.locator(".toast")).to_contain_text("Nightly copy is enabled")
    saved = web_api.get(f"/api/jobs/{job['id']}").json()
    assert saved["enabled"] is True and saved["next_run_at"] is not None

    row.get_by_role("button", name="Delete Nightly copy").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text("history is kept")
    web.shot("06-jobs-delete-confirmation", full_page=False)
    dialog.get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete Nightly copy").click()
    dialog.get_by_role("button", name="Delete job").click()
    expect(page.locator("tr.job-row", has_text="Nightly copy")).to_have_count(0)
    assert web_api.get(f"/api/jobs/{job['id']}").json()["archived"] is True


def test_the_jobs_list_compares_a_job_with_its_destination_and_names_the_differing_key(
        web: Page, web_api: httpx.Client, sources: dict) -> None:
    from playwright.sync_api import expect

    # Given a copy of the customers in which customer 5 has another name
    engine = sa.create_engine(sources["pg"])
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers_copy (id INT PRIMARY KEY, name TEXT, region TEXT)")
        conn.exec_driver_sql("INSERT INTO customers_copy SELECT id, name, region FROM customers")
        conn.exec_driver_sql("UPDATE customers_copy SET name = 'Renamed' WHERE id = 5")
    engine.dispose()
    u = make_url(sources["pg"])
    pid = web_api.post("/api/projects", json={"name": "Compare PG", "url": f"postgresql://{u.username}@{u.host}:{u.port}/{u.database}"}).json()["id"]
    web_api.post("/api/jobs", json={"name": "Copy customers", "steps": [
        {"name": "one", "project_id": pid, "sql": "SELECT id, name, region FROM customers"}],
        "destination": {"project_id": pid, "table": "customers_copy", "mode": "upsert"}})
    # When the user clicks Compare on the job's row, then the differing key, column and values show
    page = web.open("#/jobs")
    page.locator("tr.job-row", has_text="Copy customers").get_by_role("button", name="Compare Copy customers with its destination").click()
    notice = page.locator(".notice-slot")
    expect(notice).to_contain_text("Different.")
    expect(notice).to_contain_text("source rows 12, destination rows 12")
    expect(notice.locator("tr", has_text="id=5")).to_contain_text("name=Renamed")


def test_the_pages_work_in_a_narrow_window_and_from_the_keyboard(web: Page, web_api: httpx.Client) -> None:
    from playwright.sync_api import expect

    page = web.page
    page.set_viewport_size(NARROW)
    for route, name in (("#/jobs", "07-jobs-narrow"), ("#/history", "08-history-narrow"),
                        ("#/jobs/new", "09-job-editor-narrow"), ("#/projects", "10-projects-narrow")):
        web.open(route)
        if route == "#/jobs/new":
            page.locator(".flow svg").wait_for()  # drawn from the flow endpoint, debounced
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{route} scrolls sideways ({width}px)"
        web.shot(name)
    # Keyboard: the skip link comes first and leads into the page; Enter follows a link
    page.set_viewport_size({"width": 1280, "height": 800})
    web.open("#/jobs")
    page.reload()
    page.locator("main h1").wait_for()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert page.url.endswith("#/jobs")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Create New Migration Job")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_have_text("Create New Migration Job")
    expect(page.locator("main h1")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Name (required)")).to_be_focused()
    page.goto(f"{web.base_url}/#/history")
    # Statuses carry words as well as color
    statuses = {e["status"] for e in web_api.get("/api/executions").json()["items"]}
    for status in statuses:
        label = page.locator(f'.badge[data-status="{status}"]').first
        expect(label).to_have_text(re.compile(r"[A-Z][a-z]+"))


@pytest.mark.no_token
def test_a_browser_without_a_token_is_asked_for_one_and_keeps_it(web: Page, web_stack: Stack) -> None:
    from playwright.sync_api import expect

    if httpx.get(f"{web_stack.base_url}/api/jobs").status_code != 401:
        pytest.skip("this API does not ask for tokens")
    # Given a browser with no token, when it opens the page, then it is asked for one
    page = web.open("#/jobs")
    expect(page.locator("main h1")).to_have_text("Sign in")
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Use this token").click()
    # Then the page works and the token stays in this browser until they sign out
    expect(page.locator("main h1")).to_have_text("Migration jobs")
    page.reload()
    expect(page.locator("main h1")).to_have_text("Migration jobs")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("main h1")).to_have_text("Sign in")
