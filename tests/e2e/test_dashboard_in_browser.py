"""The supervisors' dashboard in headless Chromium (Debian's, driven by Playwright) after the Yongji demo:
the headline equals the projection, a street can be drilled into, and the page switches to English."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from adapters.composition import build_chain, build_views
from adapters.settings import Settings
from projections.dashboard.queries import Dashboard
from tests.http_server import served

CHROMIUM = "/usr/bin/chromium"
AT = "2021-01-01T00:00:00+08:00"
TOKENS = {
    "leader-token": ("leader-liu", "supervisor", "lg"),
    "street-token": ("secretary-ma", "supervisor", "st-chengxi"),
}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium: apt-get install chromium")


def projected(db: Path, unit_id: str | None) -> tuple[int, int, int, int]:
    settings = Settings(database_url=f"sqlite:///{db}")
    chain = build_chain(settings)
    try:
        head = Dashboard(build_views(settings), chain.chart).headline(unit_id, now=datetime.fromisoformat(AT))
        return head.resolved, head.replied, head.open, head.overdue
    finally:
        chain.close()


def shown(page: Page) -> tuple[int, int, int, int]:
    resolved, replied, open_, overdue = (int(page.locator(f"#h-{k}").inner_text().replace(",", ""))
                                         for k in ("resolved", "replied", "open", "overdue"))  # fmt: skip
    return resolved, replied, open_, overdue


def test_the_dashboard_after_the_demo(demo_db: Path, tmp_path: Path) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    with served(f"sqlite:///{demo_db}", TOKENS, tmp_path / "serve.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/?at={AT.replace('+', '%2B')}")
        page.fill("#token", "leader-token")
        page.click("#signin button[type=submit]")
        expect(page.locator("#h-resolved")).to_have_text("1,115", timeout=20_000)
        assert shown(page) == projected(demo_db, None)
        expect(page.locator("#crumbs a")).to_have_count(1)
        expect(page.locator("#crumbs a").first).to_have_attribute("data-unit", "lg")
        expect(page.locator("#rates-chart .main-svg").first).to_be_visible()
        expect(page.locator("#funnel-chart .main-svg").first).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "dashboard-leading-group.png"), full_page=True)

        # Drill down: the leading group → a street committee, by its row in the units table.
        street = page.locator("#units a[data-unit='st-chengxi']")
        street.click()
        expect(page.locator("#crumbs a")).to_have_count(2)
        page.wait_for_function("document.querySelector('#h-resolved').textContent !== '1,115'")
        assert shown(page) == projected(demo_db, "st-chengxi")
        assert "unit=st-chengxi" in page.url
        page.click("#lang")
        expect(page.locator("h2").first).to_have_text("The three rates, by unit")
        page.screenshot(path=str(SCREENSHOTS / "dashboard-street-en.png"), full_page=True)

        # A street's secretary sees their street, and is refused the leading group's figures.
        page.click("#signout")
        page.fill("#token", "street-token")
        page.click("#signin button[type=submit]")
        expect(page.locator("#crumbs a").first).to_have_attribute("data-unit", "st-chengxi", timeout=20_000)
        assert shown(page) == projected(demo_db, "st-chengxi")
        page.goto(f"{base}/?unit=lg&at={AT.replace('+', '%2B')}")
        expect(page.locator("#signin-error")).not_to_be_empty()
        expect(page.locator("#board")).to_be_hidden()
        browser.close()
