"""The resident's loop in headless Chromium on a phone-sized page, against a real `grievance serve`: the
report's receipt reaches the resident's phone through the outbox, the resident's page shows each step as it
happens, the resident rates the answer there, and the supervisors' dashboard counts it as a resident's own
rating; a grid worker's rating is refused."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from tests.conftest import grievance
from tests.http_server import served
from tests.scenario import BUILDING, HOUSEHOLD

CHROMIUM = "/usr/bin/chromium"
TOKENS = {
    "worker-token": ("worker-li", "grid_worker", HOUSEHOLD),
    "member-token": ("member-wang", "grid_worker", HOUSEHOLD),
    "group-token": ("leader-zhao", "grid_worker", BUILDING),
    "leader-token": ("leader-liu", "supervisor", "lg"),
}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE: ViewportSize = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium: apt-get install chromium")


def command(base: str, token: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/commands", json={"occurred_at": datetime.now(UTC).isoformat(), **body},
                      headers={"Authorization": f"Bearer {token}"}, timeout=20)  # fmt: skip


def applied(base: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = command(base, token, body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def delivered_receipt(db: Path, sent: Path, grievance_id: str) -> str:
    """The receipt the "reported" message carried to the resident, after `grievance notify --once`."""
    done = grievance(db, "notify", "--once", env={"GRIEVANCE_NOTIFY_FILE": str(sent)})
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in sent.read_text(encoding="utf-8").splitlines()]
    (reported,) = [m for m in messages if m["kind"] == "reported" and m["grievance_id"] == grievance_id]
    receipt: str = reported["receipt"]
    return receipt


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_the_residents_loop_on_a_phone(tmp_path: Path) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    db = tmp_path / "g.db"
    with served(f"sqlite:///{db}", TOKENS, tmp_path / "serve.log") as base, sync_playwright() as p:
        gid = str(uuid4())
        reported = {"kind": "report", "command_id": "phone-1", "grievance_id": gid, "unit_id": HOUSEHOLD,
                    "category": "safety", "channel": "wechat_group", "title": "楼道灯坏了",
                    "description": "二单元楼道灯一周没亮，老人摔了一跤。",
                    "resident": {"resident_id": "res-wang", "name": "王秀英", "phone": "13912345678"}}  # fmt: skip
        # The grid worker who reported it is not given the receipt (whoever holds it rates as the resident): it
        # reaches the resident's phone, as the outbox's sender delivers it (a file standing in for the gateway).
        assert applied(base, "worker-token", reported)["receipt"] is None
        receipt = delivered_receipt(db, tmp_path / "sms.jsonl", gid)
        assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", receipt)
        assert applied(base, "worker-token", reported)["duplicate"]

        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        page = phone.new_page()
        page.goto(f"{base}/r/{receipt}")
        expect(page.locator("#status")).to_have_text("等待认领")
        expect(page.locator("#steps li")).to_have_count(1)
        # Nothing on the page is wider than the phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "resident-1-reported.png")

        applied(base, "member-token", {"kind": "claim", "command_id": "c1", "grievance_id": gid,
                                       "unit_id": HOUSEHOLD, "mode": "member", "claimant": "member-wang"})  # fmt: skip
        applied(base, "member-token", {"kind": "record_progress", "command_id": "p1", "grievance_id": gid,
                                       "note": "内部：住户不配合"})  # fmt: skip
        applied(base, "member-token", {"kind": "escalate", "command_id": "e1", "grievance_id": gid,
                                       "note": "内部：线路属于楼栋"})  # fmt: skip
        page.reload()
        expect(page.locator("#status")).to_have_text("等待认领")
        expect(page.locator("#steps")).to_contain_text("已由党员认领办理")
        expect(page.locator("#steps")).to_contain_text("已提交上级")
        shot(page, "resident-2-escalated.png")

        applied(base, "group-token", {"kind": "claim", "command_id": "c2", "grievance_id": gid,
                                      "unit_id": BUILDING, "mode": "group", "claimant": "building-group"})  # fmt: skip
        page.reload()
        expect(page.locator("#status")).to_have_text("正在办理")
        applied(base, "group-token", {"kind": "resolve", "command_id": "s1", "grievance_id": gid,
                                      "summary": "已与物业更换灯具，并加装声控开关。"})  # fmt: skip
        page.reload()
        expect(page.locator("#status")).to_have_text("已解决")
        expect(page.locator("#answer")).to_have_text("已与物业更换灯具，并加装声控开关。")
        text = page.locator("main").inner_text()
        for secret in ("住户不配合", "线路属于楼栋", "王秀英", "13912345678", "5678", "member-wang", "leader-zhao"):
            assert secret not in text
        shot(page, "resident-3-resolved.png")

        # A grid worker may not rate, not even on a grievance that passed through their unit.
        refused = command(base, "worker-token", {"kind": "rate", "command_id": "x1", "grievance_id": gid,
                                                 "rating": "dissatisfied"})  # fmt: skip
        assert refused.status_code == 403, refused.text
        assert refused.json()["field"] == "role"

        page.check("input[value=satisfied]")
        page.fill("textarea[name=comment]", "灯亮了，谢谢！")
        shot(page, "resident-4-rating.png")
        page.click("#rate button[type=submit]")
        expect(page.locator("#message")).to_have_text("感谢您的评价。")
        expect(page.locator("#steps")).to_contain_text("评价：满意（本人评价）")
        expect(page.locator("#rate")).to_have_count(0)
        shot(page, "resident-5-rated.png")
        page.click("text=English")
        expect(page.locator("#status")).to_have_text("Resolved")
        expect(page.locator("#steps")).to_contain_text("Rated: Satisfied (by you)")
        shot(page, "resident-6-english.png")
        # A wrong code learns nothing.
        page.goto(f"{base}/r/{receipt[:-1]}{'1' if receipt[-1] != '1' else '2'}")
        expect(page.locator("h1")).to_have_text("未找到")

        board = browser.new_page(viewport={"width": 1400, "height": 1000})
        board.goto(base)
        board.fill("#token", "leader-token")
        board.click("#signin button[type=submit]")
        expect(board.locator("#h-resolved")).to_have_text("1", timeout=20_000)
        expect(board.locator("#h-satisfaction")).to_have_text("100.0%")
        expect(board.locator("#h-resident-share")).to_contain_text("居民本人评价 100.0%")
        expect(board.locator("#h-resident-share")).to_contain_text("1 条评价")
        expect(board.locator("#callbacks tbody tr")).to_have_count(0)  # rated: nobody needs calling back
        shot(board, "resident-7-dashboard.png")
        browser.close()
        rates = httpx.get(f"{base}/api/v1/dashboard/rates", headers={"Authorization": "Bearer leader-token"}).json()
        assert rates[0]["rated"] == 1
        assert rates[0]["satisfied"] == 1
