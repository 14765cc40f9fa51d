"""The flow diagram with a transformation (job.transform): a box between the steps and the
destination, every name whole and inside its box. Rendered from flow.js alone."""
from __future__ import annotations

from pathlib import Path

from services.api import web

STATIC = Path(web.__file__).parent / "static"
ORIGIN = "http://datamig.test"
FLOW = {"nodes": [{"id": 1, "step": 1, "name": "Customers of every shop in Europe", "project_name": "Shop PostgreSQL", "engine": "postgresql"},
                  {"id": 2, "step": 2, "name": "Orders", "project_name": "Orders MariaDB with a long name", "engine": "mysql"}],
        "edges": [{"from": 1, "to": 2}]}


def test_a_transformation_sits_between_the_steps_and_the_destination(browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    try:
        def serve(route) -> None:  # type: ignore[no-untyped-def]
            name = route.request.url.removeprefix(ORIGIN + "/")
            if name == "":
                route.fulfill(body="<!doctype html><html><head><link rel=stylesheet href='/app.css'></head><body></body></html>",
                              content_type="text/html")
            else:
                kind = "text/css" if name.endswith(".css") else "text/javascript"
                route.fulfill(body=(STATIC / name).read_bytes(), content_type=kind)

        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/")
        page.evaluate("""async (flow) => {
            const { drawFlow } = await import('/flow.js');
            document.body.append(...drawFlow(flow, { table: 'analytics.orders_by_customer', projectName: 'Warehouse', modeLabel: 'Upsert' },
              { sqls: ['SELECT 1', 'SELECT * FROM @result1'], transform: 'SELECT id, SUM(total) FROM @result2 GROUP BY id' }));
        }""", FLOW)
        order = page.locator(".flow-node").evaluate_all("gs => gs.map((g) => g.dataset.node)")
        assert order == ["s1", "s2", "t", "dest"]
        assert "Transformation" in page.locator(".flow-transform").text_content()
        assert "reads @result2" in page.locator(".flow-transform").text_content()
        assert "The transformed result is written to analytics.orders_by_customer" in page.locator(".flow-text").inner_text()
        outside = page.evaluate("""() => [...document.querySelectorAll('.flow-node')].flatMap((g) => {
            const box = g.querySelector('rect').getBoundingClientRect();
            return [...g.querySelectorAll('text')].filter((t) => { const r = t.getBoundingClientRect();
                return r.left < box.left || r.right > box.right; }).map((t) => t.textContent); })""")
        assert outside == []
        assert page.locator(".flow-edge-dest").count() == 2  # last step → transformation → destination
    finally:
        page.close()
