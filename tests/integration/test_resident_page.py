"""The resident's own loop over HTTP: a report's receipt, the page it opens, a rating from that page (once,
however often a phone sends it), and what a wrong code, a flood of requests or fuzzed input get."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from adapters.composition import build_http_services
from adapters.http.app import create_app
from adapters.http.rate_limits import Limit, RateLimits
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.settings import Settings
from adapters.storage.receipts import normalised
from engine.access import Role
from engine.grievance import Grievance, RatingSource
from tests.scenario import HOUSEHOLD

NAME, PHONE = "王秀英", "13912345678"
NOTE = "internal: the tenant on floor 3 is difficult"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient[Any], Any, Path]]:
    db = tmp_path / "g.db"
    settings = Settings(database_url=f"sqlite:///{db}", durability="off")
    services, _ = build_http_services(settings)
    services.tokens = TokenBook([
        TokenEntry(name="worker-li", role=Role.GRID_WORKER, unit_id=HOUSEHOLD, sha256=digest("w")),
        TokenEntry(name="member-wang", role=Role.GRID_WORKER, unit_id=HOUSEHOLD, sha256=digest("m")),
        TokenEntry(name="office-zhao", role=Role.ADMIN, unit_id=None, sha256=digest("o")),
        TokenEntry(name="secretary-ma", role=Role.SUPERVISOR, unit_id="st-chengdong", sha256=digest("s")),
    ], services.chain.chart)  # fmt: skip
    limits = RateLimits({"page": Limit(burst=1000, per_minute=1000), "rating": Limit(burst=1000, per_minute=1000)})
    with TestClient(create_app(services, resident_limits=limits)) as client:
        yield client, services, db
    services.chain.close()


def _post(client: TestClient[Any], token: str, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/commands", json={"occurred_at": datetime.now(UTC).isoformat(), **body},
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def _report(client: TestClient[Any], command_id: str = "r1", *, phone: str | None = PHONE, token: str = "w"
            ) -> dict[str, Any]:  # fmt: skip
    """A grid worker's report for a resident; `receipt` is the one the resident holds: sent to their phone (as
    the outbox's sender issues it), or, with no phone known, given to the worker to hand over."""
    gid = str(uuid4()) if command_id != "r1" else "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a00"
    resident = {"resident_id": "res-1", "name": NAME, **({"phone": phone} if phone else {})}
    response = _post(client, token, {"kind": "report", "command_id": command_id, "grievance_id": gid,
                                     "unit_id": HOUSEHOLD, "category": "safety", "title": "楼道灯坏了",
                                     "description": "二单元，一周没亮。", "resident": resident})  # fmt: skip
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    if phone:
        assert result["receipt"] is None, "whoever holds the receipt rates as the resident: it goes to their phone"
        receipts = cast(Any, client.app).state.services.receipts
        result["receipt"] = receipts.issue([UUID(gid)])[UUID(gid)]
    return result


def _resolve(client: TestClient[Any], gid: str, n: int = 1) -> None:
    for body in (
        {"kind": "claim", "command_id": f"c{n}", "unit_id": HOUSEHOLD, "mode": "member", "claimant": "member-wang"},
        {"kind": "record_progress", "command_id": f"p{n}", "note": NOTE},
        {"kind": "resolve", "command_id": f"s{n}", "summary": "已更换灯具。"},
    ):
        assert _post(client, "m", {"grievance_id": gid, **body}).status_code == 200


def test_a_report_gets_a_receipt_a_retry_the_same_and_none_is_stored_in_clear(served: Any) -> None:
    client, services, db = served
    # No phone known: the worker hands the receipt over, and a retry on a poor network gets the same one.
    first, again = _report(client, phone=None), _report(client, phone=None)
    assert again["duplicate"]
    assert first["receipt"] == again["receipt"]
    # Another worker sending the same report again learns that it was taken, not its receipt.
    assert _report(client, phone=None, token="m")["receipt"] is None
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", first["receipt"])
    other = _report(client, "r2")
    assert other["receipt"] != first["receipt"]
    code = normalised(first["receipt"])
    assert code is not None
    with sqlite3.connect(db) as store:
        dumped = "\n".join(store.iterdump())
    assert code not in dumped
    assert first["receipt"] not in dumped
    # The secret is in its own file, beside the store by default, readable by its owner alone.
    key = Path(f"{db}.receipt-key")
    assert key.stat().st_mode & 0o077 == 0
    assert services.receipts.find(first["receipt"].lower()) == UUID(first["grievance_id"])


def test_the_page_shows_each_step_and_answer_but_no_note_name_or_phone(served: Any) -> None:
    client, _, _ = served
    receipt = _report(client)["receipt"]
    page = client.get(f"/r/{receipt}")
    assert page.status_code == 200
    assert "等待认领" in page.text
    assert "诉求已受理" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert 'name="rating"' not in page.text  # nothing to rate before an answer
    _resolve(client, _report(client)["grievance_id"])
    page = client.get(f"/r/{receipt}")
    assert "已解决" in page.text
    assert "已更换灯具。" in page.text
    assert "党员" in page.text
    assert "承办人记录了办理进展" in page.text
    for secret in (NOTE, NAME, PHONE, "member-wang", "worker-li", "res-1", PHONE[-4:]):
        assert secret not in page.text
    english = client.get(f"/r/{receipt}?lang=en")
    assert "Resolved" in english.text
    assert 'lang="en"' in english.text
    assert 'name="rating"' in english.text


def test_a_rating_from_the_page_is_the_residents_own_and_a_retry_stores_one(served: Any) -> None:
    client, services, _ = served
    result = _report(client)
    receipt, gid = result["receipt"], UUID(result["grievance_id"])
    _resolve(client, str(gid))
    page = client.get(f"/r/{receipt}")
    key = re.search(r'name="key" value="([0-9a-f]+)"', page.text)
    assert key is not None
    form = {"rating": "basically_satisfied", "comment": "灯亮了，但晚了一周。", "key": key.group(1)}
    answers = [client.post(f"/r/{receipt}/rating", data=form) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("感谢您的评价" in a.text for a in answers)
    rated = [e for e in services.chain.history(gid) if isinstance(e, Grievance.Rated)]
    assert len(rated) == 1
    assert rated[0].given_by is RatingSource.RESIDENT
    assert rated[0].actor == "resident"
    # Once per closure: another key is refused, and the page offers no form any more.
    again = client.post(f"/r/{receipt}/rating", data={**form, "key": "another"})
    assert again.status_code == 422
    assert "already rated" in again.text
    assert 'name="rating"' not in client.get(f"/r/{receipt}").text


def test_a_dissatisfied_resident_reopens_it_and_may_rate_the_next_closure(served: Any) -> None:
    client, services, _ = served
    result = _report(client)
    receipt, gid = result["receipt"], result["grievance_id"]
    _resolve(client, gid)
    client.post(f"/r/{receipt}/rating", data={"rating": "dissatisfied", "key": "k1"})
    page = client.get(f"/r/{receipt}")
    assert "等待认领" in page.text
    assert "重新办理" in page.text
    _resolve(client, gid, 2)
    assert client.post(f"/r/{receipt}/rating", data={"rating": "satisfied", "key": "k2"}).status_code == 200
    rated = [e.rating for e in services.chain.history(UUID(gid)) if isinstance(e, Grievance.Rated)]
    assert rated == ["dissatisfied", "satisfied"]


def test_a_grid_worker_cannot_rate_and_a_wrong_code_learns_nothing(served: Any) -> None:
    client, _, _ = served
    result = _report(client)
    gid, receipt = result["grievance_id"], result["receipt"]
    _resolve(client, gid)
    refused = _post(client, "w", {"kind": "rate", "command_id": "x1", "grievance_id": gid, "rating": "dissatisfied"})
    assert refused.status_code == 403
    assert refused.json()["field"] == "role"
    claimant = _post(client, "m", {"kind": "rate", "command_id": "x2", "grievance_id": gid, "rating": "satisfied",
                                   "given_by": "resident"})  # fmt: skip
    assert claimant.status_code == 403
    assert claimant.json()["field"] == "given_by"
    # Unknown, malformed, one character off: one answer, the same bytes.
    off = receipt[:-1] + ("0" if receipt[-1] != "0" else "1")
    answers = [client.get(f"/r/{c}") for c in (off, "nonsense", "0000-0000-0000", "%00", "x" * 300)]
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    posted = client.post(f"/r/{off}/rating", data={"rating": "satisfied", "key": "k"})
    assert posted.status_code == 404
    assert posted.content == answers[0].content


def test_requests_past_the_limit_wait(tmp_path: Path) -> None:
    services, _ = build_http_services(Settings(database_url=f"sqlite:///{tmp_path / 'g.db'}", durability="off"))
    limits = RateLimits({"page": Limit(burst=3, per_minute=1), "rating": Limit(burst=1, per_minute=1)},
                        clock=lambda: 0.0)  # fmt: skip
    with TestClient(create_app(services, resident_limits=limits)) as client:
        statuses = [client.get("/r/AAAA-BBBB-CCCC").status_code for _ in range(5)]
        assert statuses == [404, 404, 404, 429, 429]
        waited = client.get("/r/AAAA-BBBB-CCCC")
        assert int(waited.headers["retry-after"]) >= 1
    services.chain.close()


def test_one_code_spelled_another_way_spends_the_same_rating_limit(tmp_path: Path) -> None:
    services, _ = build_http_services(Settings(database_url=f"sqlite:///{tmp_path / 'g.db'}", durability="off"))
    # Each client its own: only the code's bucket is tried.
    limits = RateLimits({"page": Limit(burst=100, per_minute=1), "rating": Limit(burst=1, per_minute=1)},
                        clock=lambda: 0.0)  # fmt: skip
    with TestClient(create_app(services, resident_limits=limits)) as client:
        spellings = ["T1AR-XHGW-E5Q7", "t1ar-xhgw-e5q7", "T1ARXHGWE5Q7", "TIAR-XHGW-E5Q7", "t 1 a r x h g w e 5 q 7"]
        answers = []
        for n, spelled in enumerate(spellings):
            limits._buckets.pop(("rating", "client:testclient"), None)  # as if from another address each time
            answers.append(client.post(f"/r/{quote(spelled)}/rating", data={"rating": "satisfied", "key": str(n)}))
        assert [a.status_code for a in answers] == [404, 429, 429, 429, 429]
    services.chain.close()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(code=st.text(max_size=60), lang=st.one_of(st.none(), st.text(max_size=10)),
       form=st.dictionaries(st.sampled_from(["rating", "comment", "key", "other"]), st.text(max_size=300),
                            max_size=4),
       raw=st.binary(max_size=300), as_form=st.booleans())  # fmt: skip
def test_no_input_reaches_a_server_error(fuzz_client: Any, code: str, lang: str | None, form: dict[str, str],
                                         raw: bytes, as_form: bool) -> None:  # fmt: skip
    client, receipt = fuzz_client
    for target in (code, receipt):
        params = {"lang": lang} if lang is not None else {}
        path = "/r/" + quote(target, safe="")
        page = client.get(path, params=params)
        assert page.status_code < 500, page.text
        sent = (
            client.post(path + "/rating", params=params, data=form)
            if as_form
            else client.post(
                path + "/rating", params=params, content=raw, headers={"content-type": "application/octet-stream"}
            )
        )
        assert sent.status_code < 500, sent.text


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient[Any], str]]:
    db = tmp_path_factory.mktemp("resident-fuzz") / "g.db"
    services, _ = build_http_services(Settings(database_url=f"sqlite:///{db}", durability="off"))
    services.tokens = TokenBook([TokenEntry(name="worker-li", role=Role.GRID_WORKER, unit_id=HOUSEHOLD,
                                            sha256=digest("w"))], services.chain.chart)  # fmt: skip
    limits = RateLimits({"page": Limit(burst=10**6, per_minute=10**6), "rating": Limit(burst=10**6, per_minute=10**6)})
    with TestClient(create_app(services, resident_limits=limits)) as client:
        yield client, _report(client)["receipt"]
    services.chain.close()


def test_a_history_damaged_behind_the_engines_back_is_a_page_that_says_so(served: Any) -> None:
    client, _, db = served
    result = _report(client)
    _resolve(client, result["grievance_id"])
    with sqlite3.connect(db) as store:
        store.execute("DELETE FROM stored_events WHERE originator_version = 1")
    page = client.get(f"/r/{result['receipt']}")
    assert page.status_code == 503
    assert "暂时无法显示" in page.text


def test_the_office_calls_back_the_closures_nobody_rated_and_its_callback_counts_as_theirs(served: Any) -> None:
    client, _, _ = served
    result = _report(client)
    gid, receipt = result["grievance_id"], result["receipt"]
    _resolve(client, gid)

    def queue(token: str, days_on: int, **params: Any) -> Any:
        at = (datetime.now(UTC) + timedelta(days=days_on)).isoformat()
        return client.get("/api/v1/callbacks", params={"at": at, **params},
                          headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    assert queue("o", 1).json()["closures"] == []  # within the seven days: the resident may still answer
    owed = queue("o", 8).json()
    assert [c["grievance_id"] for c in owed["closures"]] == [gid]
    assert owed["closures"][0]["days_waiting"] >= 7
    assert queue("o", 8, days=30).json()["closures"] == []
    # Another street's secretary sees none of it; a unit outside their street is refused.
    assert queue("s", 8).json()["closures"] == []
    assert queue("s", 8, unit=HOUSEHOLD).status_code == 403
    called = _post(client, "o", {"kind": "rate", "command_id": "cb1", "grievance_id": gid, "rating": "satisfied",
                                 "comment": "电话回访：灯已修好。"})  # fmt: skip
    assert called.status_code == 200, called.text
    after = queue("o", 8).json()
    assert after["closures"] == []
    assert after["ratings"]["rated"] == 1
    assert after["ratings"]["by_callback"] == 1
    assert after["ratings"]["resident_share"] == 0.0
    assert "回访评价" in client.get(f"/r/{receipt}").text
