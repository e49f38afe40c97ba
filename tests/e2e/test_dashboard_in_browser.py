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


def table_adds_up(page: Page) -> None:
    """The units table's "open" column (the units below and the unit itself) sums to the headline's open."""
    column = page.locator("#units tbody tr td:nth-child(5)").all_inner_texts()
    assert sum(int(v.replace(",", "")) for v in column) == shown(page)[2]


def screenshot(page: Page, name: str) -> None:
    page.wait_for_timeout(500)  # Plotly's responsive charts settle after a resize
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_the_dashboard_after_the_demo(demo_db: Path, tmp_path: Path) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    with served(f"sqlite:///{demo_db}", TOKENS, tmp_path / "serve.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # No "as of" named: the page shows the latest activity's, the end of the demo's year, and says so.
        page.goto(base)
        expect(page.locator("#signout")).to_be_hidden()
        page.fill("#token", "leader-token")
        page.click("#signin button[type=submit]")
        expect(page.locator("#h-resolved")).to_have_text("1,115", timeout=20_000)
        expect(page.locator("#signout")).to_be_visible()
        assert shown(page) == projected(demo_db, None)
        expect(page.locator("#window")).to_contain_text("2021-01-01 00:00")
        expect(page.locator("#window")).to_contain_text("2020-12")
        expect(page.locator("#crumbs a")).to_have_count(1)
        expect(page.locator("#crumbs a").first).to_have_attribute("data-unit", "lg")
        expect(page.locator("#rates-chart .main-svg").first).to_be_visible()
        expect(page.locator("#funnel-chart .main-svg").first).to_be_visible()
        table_adds_up(page)
        expect(page.locator("#units a[data-scope='unit_itself']")).to_have_count(1)
        # The funnel's names are the engine's, not the page's own.
        funnel = page.locator("#funnel-chart").inner_text()
        for name in ("党员示范户", "楼宇党小组", "社区联建委员会", "街道共建委员会", "城市基层党建工作领导小组"):
            assert name in funnel
        expect(page.locator("#funnel-note")).to_contain_text("1,263")  # 1,115 resolved + 148 replied
        # Whole counts: the daily chart's y axis has no fractional ticks.
        ticks = page.locator("#daily-chart .ytick text").all_text_contents()  # SVG text has no innerText
        assert ticks, "the daily chart has a y axis"
        assert all(t.replace(",", "").isdigit() for t in ticks), ticks
        assert len(set(ticks)) == len(ticks), ticks
        # The overdue queue names its units, and a row opens the grievance's history.
        queue = page.locator("#queue tbody tr")
        expect(queue.first).to_be_visible()
        assert not any(cell.startswith(("lg", "st-", "cm-", "jc-", "gr-", "bg-", "mh-"))
                       for cell in page.locator("#queue tbody td:nth-child(2)").all_inner_texts())  # fmt: skip
        screenshot(page, "dashboard-leading-group-zh-desktop.png")
        queue.first.locator("a").click()
        expect(page.locator("#history")).to_be_visible()
        expect(page.frame_locator("#history-frame").locator("h1")).to_contain_text("Audit report")
        screenshot(page, "dashboard-history-zh-desktop.png")
        page.click("#history-close")
        expect(page.locator("#history")).to_be_hidden()

        # Drill down: the leading group → a street committee, by its row in the units table.
        street = page.locator("#units a[data-unit='st-chengxi']")
        street.click()
        expect(page.locator("#crumbs a")).to_have_count(2)
        page.wait_for_function("document.querySelector('#h-resolved').textContent !== '1,115'")
        assert shown(page) == projected(demo_db, "st-chengxi")
        table_adds_up(page)
        assert "unit=st-chengxi" in page.url
        page.click("#lang")
        expect(page.locator("h2").first).to_have_text("The three rates, by unit")
        expect(page.locator("#funnel-chart")).to_contain_text("Model member household")
        expect(page.locator("#window")).to_contain_text("Rates over")
        screenshot(page, "dashboard-street-en-desktop.png")

        # On a phone: nothing wider than the screen, in both languages.
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "dashboard-street-en-phone.png")
        page.click("#lang")
        expect(page.locator("h2").first).to_have_text("三率（按单位）")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "dashboard-street-zh-phone.png")
        page.set_viewport_size({"width": 1400, "height": 1000})

        # A street's secretary sees their street, and is refused the leading group's figures.
        page.click("#signout")
        expect(page.locator("#signout")).to_be_hidden()
        page.fill("#token", "street-token")
        page.click("#signin button[type=submit]")
        expect(page.locator("#crumbs a").first).to_have_attribute("data-unit", "st-chengxi", timeout=20_000)
        assert shown(page) == projected(demo_db, "st-chengxi")
        page.goto(f"{base}/?unit=lg&at={AT.replace('+', '%2B')}")
        expect(page.locator("#signin-error")).not_to_be_empty()
        expect(page.locator("#board")).to_be_hidden()
        browser.close()
