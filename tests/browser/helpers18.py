"""What a person sees, measured in the browser: in the viewport, not covered, not overflowing.

Shared by the issue-18 page tests (test_page_product*.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import SCREENSHOTS
from tests.conftest import IN_CI
from tests.e2e.stack import REPO

AXE = REPO / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 1024)


def seen(page, locator) -> None:  # type: ignore[no-untyped-def]
    """The element's box is inside the viewport and its center shows the element itself
    (not the sticky action bar, a dialog or anything else on top of it)."""
    locator.wait_for(state="visible")
    box = locator.bounding_box()
    view = page.viewport_size
    assert box is not None, "no box: not rendered"
    assert box["y"] >= 0 and box["y"] + min(box["height"], 40) <= view["height"], f"out of view: {box} in {view}"
    assert box["x"] >= 0 and box["x"] + min(box["width"], 40) <= view["width"], f"out of view: {box} in {view}"
    on_top = locator.evaluate("""el => {
        const r = el.getBoundingClientRect();
        const y = Math.min(r.top + Math.min(r.height, 40) / 2, window.innerHeight - 1);
        const hit = document.elementFromPoint(r.left + Math.min(r.width, 40) / 2, y);
        return hit !== null && (el === hit || el.contains(hit) || hit.contains(el));
    }""")
    assert on_top, "the element is covered by something else"


def overflowing(page, selector: str, container: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Elements matching ``selector`` whose box leaves their closest ``container``."""
    return page.evaluate("""([sel, cont]) => [...document.querySelectorAll(sel)].filter((el) => {
        const box = el.getBoundingClientRect();
        const outer = el.closest(cont).getBoundingClientRect();
        return box.left < outer.left - 0.5 || box.right > outer.right + 0.5 || box.top < outer.top - 0.5 || box.bottom > outer.bottom + 0.5;
    }).map((el) => el.textContent)""", [selector, container])


def shoot(web, name: str) -> None:  # type: ignore[no-untyped-def]
    """Screenshots of the current page at 1280 and 1024 px wide (test-artifacts/screenshots/)."""
    page = web.page
    size = page.viewport_size
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(SCREENSHOTS / f"i18-{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)


def axe_serious(page) -> list[str]:  # type: ignore[no-untyped-def]
    """axe-core's serious and critical violations on the current page (WCAG 2 A/AA rules)."""
    if not AXE.is_file():
        if IN_CI:
            pytest.fail("axe-core is not installed (make system-deps installs it)")
        pytest.skip("axe-core is not installed (make system-deps installs it into .venv/node)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=Path(AXE).read_text(encoding="utf-8"))
    found = page.evaluate("""async () => {
        const out = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
        return out.violations.filter((v) => ['serious', 'critical'].includes(v.impact))
            .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
    }""")
    return found
