"""Issue 18: what a new user hit on the page, and what users of the best tools expect.

Against the running system (``datamig serve all``, PostgreSQL metadata, real PostgreSQL and
MariaDB sources) in Debian's chromium. Every check is on what a person sees: text in the
viewport and not covered, boxes inside their containers, rows that line up.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.browser.conftest import TOKEN, Databases, Page
from tests.browser.helpers18 import axe_serious, overflowing, seen, shoot
from tests.conftest import MYSQL_URL, unique_name
from tests.e2e.stack import Stack, stack_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
BIG = 3000
SLOW_SQL = "SELECT id, v FROM big WHERE pg_sleep(0.003) IS NOT NULL"  # ~9 s: long enough to watch it run


@pytest.fixture(scope="module")
def web_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """As conftest's, with small batches so that a slow query reports progress as it goes."""
    tmp = tmp_path_factory.mktemp("web18")
    env = stack_env(tmp, database_url=databases.postgresql(), amqp_url="memory://", prefix=unique_name("dmweb"),
                    DM_ADMIN_TOKEN=TOKEN, DM_BATCH_ROWS="100", DM_BULK_BATCH_ROWS="100")
    (tmp / "logs").mkdir()
    stack = Stack(base_url=f"http://127.0.0.1:{env['DM_API_PORT']}", env=env, log_dir=tmp / "logs")
    stack.start("api", "all")
    try:
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def source(databases: Databases) -> str:
    url = databases.postgresql()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE big (id INT PRIMARY KEY, v TEXT NOT NULL)")
        conn.exec_driver_sql(f"INSERT INTO big SELECT g, 'value ' || g FROM generate_series(1, {BIG}) g")
        conn.exec_driver_sql("CREATE TABLE big_copy (id INT PRIMARY KEY, v TEXT NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE tiny (id INT PRIMARY KEY, v TEXT NOT NULL)")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE big")
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def ids(web_stack: Stack, source: str) -> dict:
    """A project on the source and a slow job copying ``big`` into ``big_copy``."""
    u = make_url(source)
    with httpx.Client(base_url=web_stack.base_url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        pid = api.post("/api/projects", json={"name": "Warehouse PostgreSQL with a long name", "engine": "postgresql",
                                              "host": u.host, "port": u.port, "database": u.database,
                                              "username": u.username}).json()["id"]
        job = api.post("/api/jobs", json={"name": "Slow copy", "steps": [{"name": "Read big", "project_id": pid, "sql": SLOW_SQL}],
                                          "destination": {"project_id": pid, "table": "big_copy", "mode": "truncate_load"}}).json()
        assert "id" in job, job
    return {"project": pid, "job": job["id"]}


def wait_finished(api: httpx.Client, execution_id: int) -> dict:
    from time import monotonic, sleep

    end = monotonic() + 90
    while monotonic() < end:
        e = api.get(f"/api/executions/{execution_id}").json()
        if e["status"] not in ("queued", "running"):
            return e
        sleep(0.1)
    raise AssertionError(f"execution {execution_id} still {e['status']}")


def test_api_docs_and_redoc_render_without_internet(web: Page) -> None:
    from playwright.sync_api import expect

    page = web.page
    elsewhere: list[str] = []
    images: list[str] = []

    def only_here(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(web.base_url):
            route.continue_()
        elif route.request.resource_type == "image":  # ReDoc's "by Redocly" logo: decoration, answered empty
            images.append(route.request.url)
            route.fulfill(status=200, content_type="image/svg+xml", body="<svg xmlns='http://www.w3.org/2000/svg'/>")
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(f"{web.base_url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Semantico Data Migration")
    expect(page.locator("[data-path='/api/jobs']").first).to_be_visible()
    seen(page, page.locator(".swagger-ui .info .title"))
    web.shot("i18-docs-swagger")
    page.goto(f"{web.base_url}/redoc")
    expect(page.locator("h1", has_text="Semantico Data Migration")).to_be_visible(timeout=20_000)
    expect(page.get_by_role("menuitem", name="executions")).to_be_visible()
    assert elsewhere == [], f"the docs asked other origins for {elsewhere}"
    assert all("redoc" in url for url in images), images


def test_execute_shows_feedback_in_the_row_and_live_progress_to_completion(web: Page, web_api: httpx.Client, ids: dict,
                                                                           source: str) -> None:
    from playwright.sync_api import expect

    # Given a long list of jobs, with the slow one at the bottom
    for n in range(14):
        web_api.post("/api/jobs", json={"name": f"Filler {n:02d}", "steps": [{"name": "one", "project_id": ids["project"], "sql": "SELECT id, v FROM tiny"}],
                                        "destination": {"project_id": ids["project"], "table": "tiny"}})
    page = web.open("#/jobs")
    row = page.locator("tr.job-row", has_text="Slow copy")
    row.scroll_into_view_if_needed()
    # When the user clicks Execute on its row
    row.get_by_role("button", name="Execute Slow copy").click()
    # Then the answer appears where they clicked, in view
    feedback = row.locator(".row-feedback")
    expect(feedback).to_contain_text(re.compile(r"Execution #\d+ is queued"))
    seen(page, feedback)
    # And the row's status follows the execution live: running, with its phase, rows and speed
    expect(row.locator(".badge")).to_have_text(re.compile("Running"), timeout=30_000)
    line = row.locator(".progress-line")
    expect(line).to_contain_text(re.compile(r"Extracting/loading · [\d,]+ rows read"), timeout=30_000)
    seen(page, line)
    # When they open the execution, then its phases, counts and the planner's estimate show
    row.get_by_role("link", name=re.compile("last execution #")).click()
    panel = page.locator(".progress")
    expect(panel.locator("h2")).to_have_text("Now: Extracting/loading", timeout=30_000)
    expect(panel.locator(".phase-done")).to_contain_text(["Validating", "Clearing"])
    expect(panel.locator(".progress-counts")).to_contain_text("rows staged (written when the transaction commits)")
    estimate = sa.create_engine(source)
    with estimate.connect() as conn:
        planned = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + SLOW_SQL).scalar()[0]["Plan"]["Plan Rows"]
    estimate.dispose()
    expect(panel.locator(".estimate")).to_contain_text(f"Estimated {planned:,} source rows (PostgreSQL planner estimate (EXPLAIN) of step “Read big”)")
    expect(panel.locator(".estimate")).to_contain_text(re.compile(r"about [\d\w ]+ left at the rate so far"), timeout=30_000)
    expect(page.locator(".metrics")).to_contain_text("none yet (staged until the commit)")
    web.shot("i18-execution-running")
    # Then it completes: written, not staged, and the panel is gone
    expect(page.locator(".metrics .badge")).to_have_text(re.compile("Completed"), timeout=90_000)
    expect(panel).to_have_count(0)
    expect(page.locator(".metrics")).to_contain_text(f"{BIG:,}")


def test_validate_and_preview_show_their_results_in_view_with_the_focus(web: Page, web_api: httpx.Client, ids: dict) -> None:
    from playwright.sync_api import expect

    # Given a job whose destination table does not exist, and a step of 100,000 rows
    job = web_api.post("/api/jobs", json={"name": "Missing table", "steps": [
        {"name": "Numbers", "project_id": ids["project"], "sql": "SELECT g AS id FROM generate_series(1, 100000) g"}],
        "destination": {"project_id": ids["project"], "table": "no_such_table"}}).json()
    page = web.open(f"#/jobs/{job['id']}")
    page.evaluate("window.scrollTo(0, 0)")
    # When they click Validate in the sticky bar, then the result is in view and has the focus
    page.get_by_role("button", name="Validate").click()
    result = page.locator(".validate-panel h3")
    expect(result).to_have_text("✕ Some checks failed", timeout=30_000)
    expect(result).to_be_focused()
    seen(page, result)
    # When they preview the job, then the destination check is in view, above the rows, focused
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#preview-job").click()
    check = page.locator(".preview-panel .destination-check h4")
    expect(check).to_have_text("✕ Destination check found problems", timeout=30_000)
    expect(check).to_be_focused()
    seen(page, check)
    # And a capped preview says so
    count = page.locator(".preview-panel .row-count")
    expect(count).to_have_text("first 10,000 rows; more exist")
    web.shot("i18-editor-preview-in-view", full_page=False)


def test_the_flow_diagram_fits_its_text_and_marks_broken_references(web: Page, ids: dict) -> None:
    from playwright.sync_api import expect

    page = web.open("#/jobs/new")
    project = "Warehouse PostgreSQL with a long name (postgresql)"
    names = ["Unusually long step name for customers", "Orders joined", "Everything together"]
    sqls = ["SELECT id, v FROM big", "SELECT r.id FROM @result1 r", "SELECT a.id FROM @result1 a JOIN @result2 b USING (id) JOIN @result7 c USING (id)"]
    for n, (name, sql) in enumerate(zip(names, sqls), start=1):
        if n > 1:
            page.get_by_role("button", name="Add Query Step").click()
        s = page.locator("fieldset.step").nth(n - 1)
        s.get_by_label("Step name").fill(name)
        s.get_by_label("Project").select_option(label=project)
        s.get_by_label(f"SQL query of step {n}").fill(sql)
    page.get_by_label("Destination project").select_option(label=project)
    page.get_by_label("Destination table").fill("analytics.customer_order_summary_daily")
    page.get_by_label("Migration mode").select_option("sync_delete")
    flow = page.locator(".flow")
    # Then every @resultN is an arrow, and the broken one is red and named
    expect(flow.locator(".flow-edge-label")).to_have_text(["@result1", "@result1", "@result2"])
    broken = flow.locator(".flow-broken")
    expect(broken).to_contain_text("@result7: no such step")
    assert broken.locator("rect").evaluate("r => getComputedStyle(r).stroke") == "rgb(164, 38, 44)"
    expect(flow.locator(".flow-text")).to_contain_text("reads @result1, @result2; refers to @result7, which is not an earlier step")
    # And the diagram fits its card (drawn top to bottom when too wide across), nothing scrolled out of sight
    assert flow.locator(".flow-scroll").evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    assert overflowing(page, ".flow-node", ".flow-scroll") == []
    # And every name is whole (no "…") and inside its box, the destination included
    expect(flow.locator(".flow-destination")).to_contain_text("analytics.customer_order_summary_daily")
    expect(flow.locator(".flow-destination")).to_contain_text("Sync with delete")
    assert "…" not in flow.locator("svg").text_content()
    outside = page.evaluate("""() => [...document.querySelectorAll('.flow-node')].flatMap((g) => {
        const box = g.querySelector('rect').getBoundingClientRect();
        return [...g.querySelectorAll('text')].filter((t) => { const r = t.getBoundingClientRect();
            return r.left < box.left || r.right > box.right || r.top < box.top || r.bottom > box.bottom; }).map((t) => t.textContent);
    })""")
    assert outside == [], f"text outside its box: {outside}"
    web.shot_of(page.locator("section", has=flow), "i18-flow-diagram")


def test_errors_name_the_project_and_step_once_with_the_databases_words(web: Page, web_api: httpx.Client, ids: dict) -> None:
    from playwright.sync_api import expect

    u = make_url(MYSQL_URL)
    bad = web_api.post("/api/projects", json={"name": "Orders MariaDB", "engine": "mysql", "host": u.host, "port": u.port,
                                              "database": "mysql", "username": "dm_nobody_f18", "password": "wrong"}).json()
    job = web_api.post("/api/jobs", json={"name": "Cannot connect", "steps": [
        {"name": "Orders", "project_id": bad["id"], "sql": "SELECT 1 AS id"}],
        "destination": {"project_id": ids["project"], "table": "tiny"}}).json()
    run = web_api.post(f"/api/jobs/{job['id']}/execute").json()
    wait_finished(web_api, run["execution_id"])
    page = web.open(f"#/executions/{run['execution_id']}")
    message = page.locator(".error-message")
    expect(message).to_contain_text("Access denied")
    text = message.inner_text()
    assert "Orders MariaDB" in text and "Orders" in text, text
    assert text.lower().count("validation") <= 1 and not re.search(r"\(\d{4}, ['\"]", text), text
    assert not re.search(rf"project {bad['id']}\b", text), text
    web.shot("i18-execution-error")
    # And Test connection says the database's words without the driver's tuple
    page = web.open("#/projects")
    row = page.locator("tr.project-row", has_text="Orders MariaDB")
    row.get_by_role("button", name="Test connection of Orders MariaDB").click()
    expect(row.locator(".test-result")).to_contain_text("✕ Failed: Access denied")
    assert not re.search(r"\(\d{4}, ['\"]", row.locator(".test-result").inner_text())


def test_saving_a_project_whose_test_failed_asks_first(web: Page) -> None:
    from playwright.sync_api import expect

    page = web.open("#/projects/new")
    page.get_by_label("Name (required)").fill("Nowhere")
    page.get_by_label("Host", exact=True).fill("127.0.0.1")
    page.get_by_label("Port").fill("1")
    page.get_by_label("Database", exact=True).fill("none")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".project-form .test-result")).to_contain_text("✕", timeout=30_000)
    page.get_by_role("button", name="Save").click()
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_contain_text("Test connection failed")
    seen(page, dialog.get_by_role("button", name="Save anyway"))
    web.shot("i18-project-failed-test-warning", full_page=False)
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("main h1")).to_have_text("New project")
    page.get_by_role("button", name="Save").click()
    dialog.get_by_role("button", name="Save anyway").click()
    expect(page.locator("tr.project-row", has_text="Nowhere")).to_be_visible()


def test_at_1024_px_dates_stay_on_one_line_actions_do_not_stack_and_rows_line_up(web: Page, web_api: httpx.Client, ids: dict) -> None:
    run = web_api.post(f"/api/jobs/{ids['job']}/execute").json()
    wait_finished(web_api, run["execution_id"])
    page = web.page
    page.set_viewport_size({"width": 1024, "height": 800})
    for route in ("#/jobs", "#/history", "#/home", "#/projects"):
        web.open(route)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024, f"{route} scrolls sideways"
        assert page.evaluate("[...document.querySelectorAll('.table-wrap')].every((w) => w.scrollWidth <= w.clientWidth + 1)"), \
            f"a table of {route} is wider than its box"
        uneven = page.evaluate("""() => [...document.querySelectorAll('tbody tr')].filter((tr) => {
            const bottoms = [...tr.children].map((td) => Math.round(td.getBoundingClientRect().bottom));
            return Math.max(...bottoms) - Math.min(...bottoms) > 1; }).length""")
        assert uneven == 0, f"{route}: {uneven} rows whose cells end at different heights"
    web.open("#/jobs")
    rows_of_buttons = page.evaluate("""() => [...document.querySelectorAll('tr.job-row td.row-actions')].map((td) =>
        new Set([...td.querySelectorAll('.btn')].map((b) => Math.round(b.getBoundingClientRect().top))).size)""")
    assert rows_of_buttons and max(rows_of_buttons) <= 2, rows_of_buttons
    web.open("#/history")
    page.locator(".history-table td.date").first.wait_for()
    lines = page.evaluate("""() => [...document.querySelectorAll('.history-table td.date')].map((td) => {
        const range = document.createRange(); range.selectNodeContents(td);
        return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size; })""")
    assert lines and max(lines) == 1, f"dates on {lines} lines"
    assert overflowing(page, ".history-table .badge", "td") == []
    # And an execution's figures keep each label above its value, dates on one line
    web.open(f"#/executions/{run['execution_id']}")
    page.locator(".metrics .metric").first.wait_for()
    split = page.evaluate("""() => [...document.querySelectorAll('.metrics dt')].filter((dt) => {
        const dd = dt.nextElementSibling; const a = dt.getBoundingClientRect(); const b = dd.getBoundingClientRect();
        return Math.abs(a.left - b.left) > 1 || b.top < a.bottom - 1; }).map((dt) => dt.textContent)""")
    assert split == [], f"labels away from their values: {split}"
    assert overflowing(page, ".metrics .date", ".metric") == []
    assert page.locator(".metrics .date").evaluate_all("ds => ds.map((d) => d.getClientRects().length)") == [1, 1, 1]


def test_the_disable_action_beside_execute(web: Page, web_api: httpx.Client, ids: dict) -> None:
    from playwright.sync_api import expect

    web_api.patch(f"/api/jobs/{ids['job']}", json={"enabled": True})
    page = web.open("#/jobs")
    row = page.locator("tr.job-row", has_text="Slow copy")
    row.get_by_role("button", name="Disable Slow copy").click()
    expect(page.locator(".toast")).to_contain_text("Slow copy is disabled")
    expect(row.get_by_role("button", name="Enable Slow copy")).to_have_text("Enable")
    expect(row.get_by_role("switch", name="Enabled: Slow copy")).not_to_be_checked()
    assert web_api.get(f"/api/jobs/{ids['job']}").json()["enabled"] is False


def test_the_overview_and_a_jobs_trend_show_the_last_runs(web: Page, web_api: httpx.Client, ids: dict) -> None:
    from playwright.sync_api import expect

    job = web_api.post("/api/jobs", json={"name": "Trend job", "schedule": "0 4 * * *", "enabled": True, "steps": [
        {"name": "one", "project_id": ids["project"], "sql": "SELECT id, v FROM big WHERE id <= 40"}],
        "destination": {"project_id": ids["project"], "table": "big_copy", "mode": "upsert"}}).json()
    outcomes = []
    for sql in ("SELECT id, v FROM big WHERE id <= 40", "SELECT id, v, nope FROM big", "SELECT id, v FROM big WHERE id <= 60"):
        web_api.put(f"/api/jobs/{job['id']}", json={**{k: job[k] for k in ("name", "schedule", "enabled", "destination")},
                                                     "steps": [{"name": "one", "project_id": ids["project"], "sql": sql}]})
        run = web_api.post(f"/api/jobs/{job['id']}/execute").json()
        outcomes.append(wait_finished(web_api, run["execution_id"])["status"])
    assert outcomes == ["completed", "failed", "completed"], outcomes
    page = web.open("#/history?job=" + str(job["id"]))
    trend = page.locator(".trend")
    expect(trend.locator("h2")).to_have_text("Last 3 executions: duration and rows")
    expect(trend.locator(".strip-cell")).to_have_count(3)
    expect(trend.locator(".strip-legend")).to_have_text("2 completed · 1 failed, timed out or cancelled · 0 partial or skipped")
    expect(trend.locator(".trend-rows .trend-bar")).to_have_count(3)
    heights = trend.locator(".trend-rows .trend-bar").evaluate_all("bars => bars.map((b) => Number(b.getAttribute('height')))")
    assert heights[0] < heights[2] and heights[1] == 0, heights  # 40 rows, none, 60 rows
    seen(page, trend.locator("h2"))
    web.shot("i18-job-trend")
    page = web.open("#/home")
    expect(page.locator("main h1")).to_have_text("Overview")
    tile = lambda name: page.locator(f'.tile[data-tile="{name}"] .tile-value')  # noqa: E731
    items = web_api.get("/api/executions?limit=500").json()["items"]  # all of them ran in the last minutes
    expect(tile("Runs")).to_have_text(f"{len(items):,}")
    expect(tile("Failures")).to_have_text(str(sum(e["status"] in ("failed", "timed_out", "cancelled") for e in items)))
    moved = sum(e["rows_written"] for e in items if e["status"] in ("completed", "partial_success"))
    expect(tile("Rows moved")).to_have_text(f"{moved:,}")
    expect(page.locator(".next-list")).to_contain_text("Trend job")
    seen(page, tile("Rows moved"))
    web.shot("i18-overview")


@pytest.mark.no_token
def test_a_refused_token_leads_to_sign_in_without_sign_out(web: Page) -> None:
    from playwright.sync_api import expect

    page = web.open("#/jobs")
    page.evaluate("window.localStorage.setItem('datamig.token', 'not-a-valid-token')")
    page.reload()
    expect(page.locator("main h1")).to_have_text("Sign in")
    expect(page.get_by_role("alert")).to_contain_text("was refused")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Use this token").click()
    expect(page.locator("main h1")).to_have_text("Migration jobs")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.mark.axe
def test_every_page_has_no_serious_accessibility_violation_and_is_photographed(web: Page, web_api: httpx.Client, ids: dict) -> None:
    execution = web_api.get(f"/api/executions?job_id={ids['job']}&limit=1").json()["items"]
    routes = {"overview": "#/home", "jobs": "#/jobs", "job-new": "#/jobs/new", "job-edit": f"#/jobs/{ids['job']}",
              "history": "#/history", "job-history": f"#/history?job={ids['job']}", "projects": "#/projects",
              "project-new": "#/projects/new", "project-edit": f"#/projects/{ids['project']}"}
    if execution:
        routes["execution"] = f"#/executions/{execution[0]['id']}"
    problems = {}
    for name, route in routes.items():
        page = web.open(route)
        page.wait_for_load_state("networkidle")
        found = axe_serious(page)
        if found:
            problems[name] = found
        shoot(web, name)
    page.evaluate("window.localStorage.removeItem('datamig.token')")
    page = web.open("#/jobs")
    page.locator("main h1", has_text="Sign in").wait_for()
    if found := axe_serious(page):
        problems["sign-in"] = found
    shoot(web, "sign-in")
    assert problems == {}, problems
