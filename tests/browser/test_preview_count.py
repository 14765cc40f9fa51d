"""The preview panel says when a step's row count was capped ("first 10,000 rows; more exist")."""
from __future__ import annotations

from pathlib import Path

from services.api import web

STATIC = Path(web.__file__).parent / "static"
ORIGIN = "http://datamig.test"


def _render(browser, step: dict) -> str:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    try:
        def serve(route) -> None:  # type: ignore[no-untyped-def]
            name = route.request.url.removeprefix(ORIGIN + "/")
            if name == "":
                route.fulfill(body="<!doctype html><html><body></body></html>", content_type="text/html")
            else:
                route.fulfill(body=(STATIC / name).read_bytes(), content_type="text/javascript")

        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/")
        page.evaluate("""async (step) => {
            const { renderPreview } = await import('/preview.js');
            document.body.append(...renderPreview({ steps: [step] }));
        }""", step)
        return page.locator(".row-count").inner_text()
    finally:
        page.close()


def _step(row_count: int, truncated: bool) -> dict:
    return {"step": 1, "name": "numbers", "project_id": 1, "columns": [{"name": "i", "type": "int"}],
            "rows": [[1], [2]], "row_count": row_count, "truncated": truncated, "elapsed_ms": 12.5, "error": None}


def test_a_capped_count_says_more_rows_exist(browser) -> None:  # type: ignore[no-untyped-def]
    assert _render(browser, _step(10_000, True)) == "first 10,000 rows; more exist"
    assert _render(browser, _step(10_000, False)) == "10,000 rows"
