"""Times as the README writes them, on every channel, after `grievance demo`: the CLI and the API take RFC 3339
without seconds, every time shown to a person is in China Standard Time and labelled, and the same "as of"
gives the same window of rates in the demo, the CLI's dashboard, the API and the page."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.composition import build_http_services
from adapters.http.app import create_app
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.settings import Settings
from engine.access import Role
from tests.conftest import grievance

README_AT = "2021-01-01T00:00+08:00"  # README's own form: no seconds
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    """The demo's store, copied: these tests report into it."""
    db = tmp_path / "grievances.db"
    shutil.copy(demo_db, db)
    return db


@pytest.fixture
def api(demo_db: Path) -> Iterator[TestClient[Any]]:
    services, _ = build_http_services(Settings(database_url=f"sqlite:///{demo_db}"))
    services.tokens = TokenBook([TokenEntry(name="leader-liu", role=Role.SUPERVISOR, unit_id="lg",
                                            sha256=digest("leader-token"))], services.chain.chart)  # fmt: skip
    with TestClient(app=create_app(services)) as client:
        client.headers["Authorization"] = "Bearer leader-token"
        yield client
    services.chain.close()


def _dashboard_printed(text: str) -> str:
    """What a `dashboard` printed: from its headline's title to the end."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if " as of " in line)
    return "\n".join(lines[start:])


def test_the_demo_and_the_cli_dashboard_show_the_same_as_of_and_window(demo_db: Path) -> None:
    demo = (demo_db.parent / "demo.out").read_text(encoding="utf-8")
    assert "城市基层党建工作领导小组 (lg) as of 2021-01-01 00:00 CST" in demo
    assert "Rates 2020-01 to 2020-12" in demo
    done = grievance(demo_db, "dashboard", "--at", README_AT, "--no-catch-up")
    assert done.returncode == 0, done.stderr
    assert _dashboard_printed(done.stdout) == _dashboard_printed(demo)
    in_utc = grievance(demo_db, "dashboard", "--at", "2020-12-31T16:00Z", "--no-catch-up")
    assert _dashboard_printed(in_utc.stdout) == _dashboard_printed(demo)  # the same instant, written in UTC


def test_the_cli_and_the_api_give_the_same_window_for_the_same_as_of(demo_db: Path, api: TestClient[Any]) -> None:
    document = json.loads(grievance(demo_db, "dashboard", "--at", README_AT, "--json", "--no-catch-up").stdout)
    by_at = api.get("/api/v1/dashboard/rates", params={"unit": "lg", "at": README_AT})
    assert by_at.status_code == 200, by_at.text
    spelt_out = api.get("/api/v1/dashboard/rates", params={"unit": "lg", "from": "2020-01", "to": "2020-12"}).json()
    assert document["rates"] == by_at.json() == spelt_out
    chengxi = next(r for r in spelt_out if r["unit_id"] == "st-chengxi")
    # Each street's reports of the demo's year, not February to January.
    assert chengxi["reported"] == api.get("/api/v1/dashboard/rates", params={
        "unit": "st-chengxi", "from": "2020-01", "to": "2020-12"}).json()[0]["reported"]  # fmt: skip
    headline = api.get("/api/v1/dashboard/headline", params={"at": README_AT})
    assert headline.json() == json.loads(json.dumps(document["headline"]))


@pytest.mark.parametrize(
    "path",
    ["/api/v1/dashboard/headline", "/api/v1/dashboard/overdue", "/api/v1/dashboard/rates"],
)
def test_the_api_takes_the_readmes_as_of_as_written(api: TestClient[Any], path: str) -> None:
    # The README's `?at=2021-01-01T00:00%2B08:00`, sent as it is written in the address.
    response = api.get(f"{path}?at=2021-01-01T00:00%2B08:00")
    assert response.status_code == 200, response.text
    refused = api.get(f"{path}?at=2021-01-01T00:00")
    assert refused.status_code == 400
    assert refused.json()["field"] == "at"
    assert "no timezone offset" in refused.json()["reason"]


def test_report_and_show_take_the_same_forms(demo_copy: Path) -> None:
    reported = grievance(demo_copy, "report", "--unit", "mh-chengdong-01-1-1-1", "--category", "other", "--title",
                         "t", "--description", "d", "--at", "2021-01-01T00:00+08:00", "--json")  # fmt: skip
    assert reported.returncode == 0, reported.stderr
    gid = json.loads(reported.stdout)["grievance_id"]
    shown = grievance(demo_copy, "show", gid, "--at", "2021-01-01T00:00+08:00", "--clock", "occurred")
    assert shown.returncode == 0, shown.stderr
    assert "2021-01-01 00:00 CST" in shown.stdout
    history = grievance(demo_copy, "history", gid)
    assert "2021-01-01 00:00:00 CST" in history.stdout
    assert "UTC" not in history.stdout
    assert "+08" not in history.stdout
    actions = grievance(demo_copy, "operator-actions", gid)
    assert re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} CST  ", actions.stdout), actions.stdout
    elsewhere = grievance(demo_copy, "show", gid, "--at", "2021-01-01T00:00Z", "--clock", "occurred", "--json")
    assert json.loads(elsewhere.stdout)["reported_at"] == "2021-01-01T00:00:00+08:00"  # machine output: RFC 3339


def test_a_display_zone_that_is_none_is_one_line_and_exit_3(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIEVANCE_DISPLAY_TIMEZONE", "China/Beijing")
    done = grievance(demo_db, "dashboard", "--at", README_AT)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "error: GRIEVANCE_DISPLAY_TIMEZONE: 'China/Beijing' is not an IANA time zone (such as Asia/Shanghai, "
        "Asia/Hong_Kong or UTC) [infrastructure]"
    ]


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium: apt-get install chromium")
def test_the_page_shows_the_same_window_and_its_date_in_its_own_language(demo_db: Path, tmp_path: Path,
                                                                         api: TestClient[Any]) -> None:  # fmt: skip
    from playwright.sync_api import expect, sync_playwright

    from tests.http_server import served

    tokens = {"leader-token": ("leader-liu", "supervisor", "lg")}
    expected = api.get("/api/v1/dashboard/rates", params={"unit": "lg", "from": "2020-01", "to": "2020-12"}).json()
    with served(f"sqlite:///{demo_db}", tokens, tmp_path / "serve.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # A browser in the United States, in English: the page follows its own language and zone instead.
        page = browser.new_page(locale="en-US", timezone_id="America/New_York")
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/dashboard/rates" in r.url else None)
        page.goto(f"{base}/?at=2021-01-01T00:00%2B08:00")
        page.fill("#token", "leader-token")
        page.click("#signin button[type=submit]")
        expect(page.locator("#h-resolved")).to_have_text("1,115", timeout=20_000)
        expect(page.locator("#at")).to_have_value("2021-01-01 00:00")
        expect(page.locator("#at")).to_have_attribute("placeholder", "年-月-日 时:分")
        expect(page.locator("#at-shown")).to_have_text("2021年1月1日 00:00 CST")
        # The units below, then the leading group's own row ("itself"), as the page lists them; the table fills
        # after the headline, so wait for its rows before reading them.
        below = [r for r in expected if r["unit_id"] != "lg" or r["scope"] == "unit_itself"]
        expect(page.locator("#units tbody tr")).to_have_count(len(below), timeout=20_000)
        shown_rates = [row.locator("td").nth(1).inner_text() for row in page.locator("#units tbody tr").all()]
        assert shown_rates == [f"{r['response_rate'] * 100:.1f}%" for r in below]
        assert all("at=2021-01-01T00%3A00%3A00%2B08%3A00" in url for url in asked), asked
        page.click("#lang")
        expect(page.locator("#at-shown")).to_have_text("1 January 2021 at 00:00 CST")
        expect(page.locator("#at")).to_have_attribute("placeholder", "yyyy-mm-dd hh:mm")
        page.fill("#at", "2020-12-31 23:59")
        page.locator("#at").dispatch_event("change")
        expect(page.locator("#at-shown")).to_have_text("31 December 2020 at 23:59 CST")
        page.fill("#at", "2020-02-30 10:00")
        page.locator("#at").dispatch_event("change")
        expect(page.locator("#at")).to_have_attribute("aria-invalid", "true")
        browser.close()


def test_history_html_shows_its_times_in_the_display_zone_labelled(api: TestClient[Any]) -> None:
    gid = api.get("/api/v1/grievances", params={"unit": "lg", "limit": 1}).json()["items"][0]["grievance_id"]
    html = api.get(f"/api/v1/grievances/{gid}/history.html").text
    occurred = api.get(f"/api/v1/grievances/{gid}/history").json()["events"][0]["occurred_at"]
    assert occurred.endswith("+08:00")  # machine output keeps RFC 3339 with the offset
    assert f"<td>{occurred[:10]} {occurred[11:19]} CST</td>" in html
    assert "+0000" not in html
    assert "+0800" not in html
