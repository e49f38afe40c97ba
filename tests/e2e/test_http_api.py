"""The HTTP service as its clients use it: every endpoint, each role, and the error paths, as problem details."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import TestClient

from adapters.composition import build_http_services
from adapters.http.app import create_app
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.settings import Settings
from engine.access import Role
from engine.errors import GrievanceError
from tests.scenario import BUILDING, GRID, HOUSEHOLD, STREET

OTHER_STREET = "st-chengdong"
TOKENS = {
    "worker": ("grid-worker-li", Role.GRID_WORKER, GRID),
    "street": ("supervisor-wang", Role.SUPERVISOR, STREET),
    "elsewhere": ("supervisor-zhao", Role.SUPERVISOR, OTHER_STREET),
    "auditor": ("auditor-sun", Role.AUDITOR, None),
    "admin": ("admin-qian", Role.ADMIN, None),
    "caller": ("caller-zhou", Role.SUPERVISOR, STREET),  # the office that calls residents back: may reveal
    "member": ("m-1", Role.GRID_WORKER, HOUSEHOLD),  # a member on the roster (tests/e2e/test_roster_http.py)
}


class Api:
    """A client per role, and the store behind them."""

    def __init__(self, client: TestClient[Any], services: Any, projection: Any) -> None:
        self.client, self.services, self.projection = client, services, projection

    def as_(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer token-of-{who}"} if who else {}

    def get(self, path: str, who: str | None = "admin", **params: Any) -> Any:
        return self.client.get(path, headers=self.as_(who), params=params)

    def post(self, path: str, body: Any, who: str | None = "worker") -> Any:
        return self.client.post(path, headers=self.as_(who), json=body)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    services, projection = build_http_services(Settings(database_url=f"sqlite:///{tmp_path}/g.db"))
    services.tokens = TokenBook(
        [
            TokenEntry(name=n, role=r, unit_id=u, sha256=digest(f"token-of-{k}"), reveals_personal_data=k == "caller")
            for k, (n, r, u) in TOKENS.items()
        ],
        services.chain.chart,
    )
    with TestClient(app=create_app(services)) as client:
        yield Api(client, services, projection)
    services.chain.close()


def now(minutes: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=60 - minutes)).isoformat()


def report(gid: UUID | None = None, unit: str = HOUSEHOLD, **extra: Any) -> dict[str, Any]:
    return {"kind": "report", "command_id": str(uuid4()), "grievance_id": str(gid or uuid4()), "occurred_at": now(),
            "unit_id": unit, "category": "parking", "title": "车位紧张", "description": "没车位", **extra}  # fmt: skip


def step(kind: str, gid: UUID | str, minutes: float, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "command_id": str(uuid4()), "grievance_id": str(gid), "occurred_at": now(minutes), **fields}


def assert_problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["field"] == field, body
    return body


def test_health_and_the_openapi_document_need_no_token(api: Api) -> None:
    health = api.get("/api/v1/health", who=None).json()
    assert (health["status"], health["healthy"], health["set_aside"], health["problems"]) == ("ok", True, 0, [])
    paths = api.get("/schema/openapi.json", who=None).json()["paths"]
    assert {"/api/v1/commands", "/api/v1/dashboard/headline", "/open311/v2/requests.json"} <= set(paths)


def test_no_token_is_401_and_a_bad_one_too_but_a_wrong_role_is_403(api: Api) -> None:
    assert_problem(api.get("/api/v1/dashboard/headline", who=None), 401, "authorization")
    assert_problem(api.client.get("/api/v1/grievances", headers={"Authorization": "Bearer nope"}), 401, "authorization")
    assert_problem(api.post("/api/v1/commands", report(), who="street"), 403, "role")
    assert_problem(api.post("/api/v1/commands", report(), who="auditor"), 403, "role")


def test_a_grid_worker_reports_in_their_jurisdiction_and_the_actor_comes_from_the_token(api: Api) -> None:
    gid = uuid4()
    answer = api.post("/api/v1/commands", report(gid, actor="someone-else"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "waiting"
    history = api.get(f"/api/v1/grievances/{gid}/history", who="auditor").json()
    assert history["events"][0]["actor"] == "grid-worker-li"
    assert len(history["events"][0]["hash"]) == 64


def test_commands_outside_the_jurisdiction_are_refused_and_learn_nothing(api: Api) -> None:
    outside = "mh-chengdong-01-1-1-1"
    assert_problem(api.post("/api/v1/commands", report(unit=outside)), 403, "unit_id")
    gid = uuid4()
    assert api.post("/api/v1/commands", report(gid, unit=outside), who="admin").status_code == 200
    claim = step("claim", gid, 5, unit_id=outside, mode="member", claimant="m")
    assert_problem(api.post("/api/v1/commands", claim), 403, "unit_id")
    inside = step("claim", gid, 5, unit_id=HOUSEHOLD, mode="member", claimant="m")
    hidden = assert_problem(api.post("/api/v1/commands", inside), 422, "grievance_id")
    unknown = step("claim", uuid4(), 5, unit_id=HOUSEHOLD, mode="member", claimant="m")
    known_to_nobody = assert_problem(api.post("/api/v1/commands", unknown), 422, "grievance_id")
    assert (hidden["code"], hidden["title"]) == (known_to_nobody["code"], known_to_nobody["title"])


def test_malformed_and_refused_commands_are_problems_naming_the_field(api: Api) -> None:
    body = assert_problem(api.post("/api/v1/commands", {**report(), "category": "ufo"}), 400, "category")
    assert body["code"] == "malformed"
    assert_problem(api.client.post("/api/v1/commands", headers=api.as_("worker"), content=b"{oops"), 400, "$")
    gid = uuid4()
    api.post("/api/v1/commands", report(gid))
    refused = assert_problem(api.post("/api/v1/commands", step("resolve", gid, 5, summary="done")), 422, "status")
    assert refused["code"] == "invalid_transition"


def test_a_batch_applies_the_good_and_answers_each_bad_one_in_its_place(api: Api) -> None:
    gid = uuid4()
    claim = step("claim", gid, 5, unit_id=HOUSEHOLD, mode="member", claimant="m-1")
    batch = [
        report(gid),
        claim,
        report(unit="mh-chengdong-01-1-1-1"),
        {"kind": "rate"},
        step("resolve", gid, 9, summary="好"),
    ]
    results = api.post("/api/v1/commands", batch).json()
    assert [r.get("status") or r["code"] for r in results] == [
        "waiting",
        "claimed",
        "forbidden",
        "malformed",
        "resolved",
    ]
    again = api.post("/api/v1/commands", batch).json()
    assert [r.get("duplicate") for r in again[:2]] == [True, True]


def test_readers_see_their_subtree_at_any_version_or_time(api: Api) -> None:
    gid = uuid4()
    api.post("/api/v1/commands", report(gid))
    api.post("/api/v1/commands", step("claim", gid, 5, unit_id=HOUSEHOLD, mode="member", claimant="m"))
    api.post("/api/v1/commands", step("escalate", gid, 10, note="楼里解决不了"))
    assert api.get(f"/api/v1/grievances/{gid}", who="street").json()["unit_id"] == BUILDING
    assert api.get(f"/api/v1/grievances/{gid}", who="street", version=1).json()["status"] == "waiting"
    at = (datetime.now(UTC) - timedelta(minutes=57)).isoformat()
    assert api.get(f"/api/v1/grievances/{gid}", who="auditor", at=at, clock="occurred").json()["version"] == 1
    assert_problem(api.get(f"/api/v1/grievances/{gid}", who="elsewhere"), 404, "grievance_id")  # as if unknown
    assert_problem(api.get(f"/api/v1/grievances/{uuid4()}"), 404, "grievance_id")
    assert_problem(api.get(f"/api/v1/grievances/{gid}", version=0), 400, "version")
    assert_problem(api.get(f"/api/v1/grievances/{gid}", version=1, at=at), 422, "version")


def test_auditors_verify_and_export_every_history(api: Api) -> None:
    gid = uuid4()
    api.post("/api/v1/commands", report(gid))
    assert api.get(f"/api/v1/grievances/{gid}/verify", who="auditor").json() == {"grievance_id": str(gid),
                                                                                  "intact": True}  # fmt: skip
    lines = api.get(f"/api/v1/grievances/{gid}/history.jsonl", who="auditor").text.splitlines()
    assert len(lines) == 1
    report_html = api.get(f"/api/v1/grievances/{gid}/history.html", who="auditor")
    assert report_html.headers["content-type"].startswith("text/html")
    assert "intact" in report_html.text


def test_the_dashboard_answers_each_reader_for_their_own_subtree(api: Api) -> None:
    for _ in range(3):
        gid = uuid4()
        api.post("/api/v1/commands", report(gid))
        api.post("/api/v1/commands", step("claim", gid, 5, unit_id=HOUSEHOLD, mode="member", claimant="m-1"))
        api.post("/api/v1/commands", step("resolve", gid, 9, summary="修好了"))
    api.post("/api/v1/commands", report())
    api.projection.catch_up()
    head = api.get("/api/v1/dashboard/headline", who="street").json()
    assert (head["unit_id"], head["resolved"], head["open"]) == (STREET, 3, 1)
    assert api.get("/api/v1/dashboard/headline", who="elsewhere").json()["resolved"] == 0
    assert api.get("/api/v1/dashboard/headline", who="auditor").json()["unit_id"] == "lg"
    assert_problem(api.get("/api/v1/dashboard/headline", who="street", unit=OTHER_STREET), 403, "unit_id")
    assert_problem(api.get("/api/v1/dashboard/headline", who="street", unit="nowhere"), 422, "unit_id")
    assert_problem(api.get("/api/v1/dashboard/headline", at="yesterday"), 400, "at")
    today = datetime.now(UTC).astimezone().strftime("%Y-%m")
    rates = api.get("/api/v1/dashboard/rates", who="street", **{"from": "2020-01", "to": today}).json()
    assert rates[0]["unit_id"] == STREET
    assert_problem(api.get("/api/v1/dashboard/rates", **{"from": "2020-13"}), 422, "from_month")
    assert api.get("/api/v1/dashboard/counts", who="street").json()[0]["resolved"] == 3
    days = api.get("/api/v1/dashboard/daily", who="street", **{"from": "2020-01-01", "to": "2030-01-01"}).json()
    assert sum(d["reported"] for d in days) == 4
    assert {f["level"]: f["resolved"] for f in api.get("/api/v1/dashboard/funnel").json()}["member_household"] == 3
    assert api.get("/api/v1/dashboard/durations", who="street").json()[0]["unit_id"] == STREET
    assert len(api.get("/api/v1/dashboard/durations", by_level=True).json()) == 7
    assert_problem(api.get("/api/v1/dashboard/durations", who="street", by_level=True), 403, "unit_id")
    assert api.get("/api/v1/dashboard/overdue", at=(datetime.now(UTC) + timedelta(days=30)).isoformat()).json()
    assert api.get("/api/v1/dashboard/points").json()[0]["claimant"] == "m-1"
    page = api.get("/api/v1/grievances", who="worker", status="resolved", limit=2).json()
    assert (len(page["items"]), page["more"]) == (2, True)
    assert_problem(api.get("/api/v1/grievances", status="lost"), 422, "status")
    assert_problem(api.get("/api/v1/grievances", limit=0), 400, "limit")
    # Found by the fuzzer: an offset past the store's integer range was a server error.
    assert_problem(api.get("/api/v1/grievances", offset=2**63), 400, "offset")
    with pytest.raises(GrievanceError, match="offset"):
        api.services.dashboard.grievances(now=datetime.now(UTC), offset=2**63)
    unit = api.get(f"/api/v1/chart/units/{STREET}", who="street").json()
    assert {c["level"] for c in unit["children"]} == {"joint_committee"}
    assert_problem(api.get("/api/v1/chart/units/lg", who="street"), 403, "unit_id")


def test_open311_lists_services_and_files_and_reads_requests(api: Api) -> None:
    services = api.get("/open311/v2/services.json", who=None).json()
    assert {"service_code": "parking"}.items() <= next(s for s in services if s["service_code"] == "parking").items()
    form = {"service_code": "parking", "address_id": HOUSEHOLD, "description": "消防通道被占"}
    assert api.client.post("/open311/v2/requests.json", data=form).status_code == 403
    bad = api.client.post("/open311/v2/requests.json", data={**form, "api_key": "token-of-worker", "service_code": "x"})
    assert bad.status_code == 404, "POST Service Request: 404 - service_code was not found"
    assert bad.json()[0]["description"].startswith("service_code:")
    filed = api.client.post("/open311/v2/requests.json", data={**form, "api_key": "token-of-worker"})
    assert filed.status_code == 201, filed.text
    request_id = filed.json()[0]["service_request_id"]
    again = api.client.post("/open311/v2/requests.json", data={**form, "api_key": "token-of-worker"})
    assert again.json()[0]["service_request_id"] == request_id, "a retried request files one grievance"
    api.projection.catch_up()
    key = {"api_key": "token-of-street"}
    (one,) = api.get(f"/open311/v2/requests/{request_id}.json", who=None, **key).json()
    assert (one["status"], one["service_code"], one["address_id"]) == ("open", "parking", HOUSEHOLD)
    assert one["description"] is None, "never text written by or about a resident"
    listed = api.get("/open311/v2/requests.json", who=None, status="open", service_code="parking", **key).json()
    assert [r["service_request_id"] for r in listed] == [request_id]
    assert api.get("/open311/v2/requests.json", who=None, status="closed", **key).json() == []
    assert api.get("/open311/v2/requests.json", who=None, status="lost", **key).status_code == 400
    assert api.get(f"/open311/v2/requests/{uuid4()}.json", who=None, **key).status_code == 404
    # Outside the reader's jurisdiction, and without a key, nothing is shown.
    assert api.get("/open311/v2/requests.json", who=None, api_key="token-of-elsewhere").json() == []
    assert api.get(f"/open311/v2/requests/{request_id}.json", who=None, api_key="token-of-elsewhere").status_code == 404
    assert api.get("/open311/v2/requests.json", who=None).status_code == 403
    api.services.open311_public = True
    assert [r["service_request_id"] for r in api.get("/open311/v2/requests.json", who=None).json()] == [request_id]


def test_inputs_that_once_were_500s_are_400s_and_a_batch_too_large_is_413(api: Api) -> None:
    gid = uuid4()
    api.post("/api/v1/commands", report(gid))
    assert_problem(api.get(f"/api/v1/grievances/{gid}", version=9223372036854775808), 400, "version")
    for when in ("0001-01-01T00:00:00+00:00", "9999-12-31T00:00:00+00:00"):
        answer = api.client.get("/open311/v2/requests.json", params={"end_date": when, "api_key": "token-of-admin"})
        assert answer.status_code == 400, answer.text
        assert "end_date" in answer.json()[0]["description"]
    for deep in (b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000):
        body = assert_problem(api.client.post("/api/v1/commands", headers=api.as_("worker"), content=deep), 400, "$")
        assert body["code"] == "malformed"
    too_many = [report() for _ in range(1001)]
    body = assert_problem(api.post("/api/v1/commands", too_many), 413, "$")
    assert body["code"] == "batch_too_large"


def test_personal_data_is_masked_for_every_role_and_each_full_reading_is_recorded(api: Api) -> None:
    gid = uuid4()
    resident = {"resident_id": "res-1", "name": "王芳", "phone": "139 0000 1234"}
    assert api.post("/api/v1/commands", report(gid, resident=resident)).status_code == 200
    for who in ("worker", "street", "auditor", "admin"):
        shown = api.get(f"/api/v1/grievances/{gid}", who=who).json()
        assert (shown["resident_name"], shown["resident_phone"]) == ("王*", "139****1234"), who
        history = api.get(f"/api/v1/grievances/{gid}/history", who=who).text
        assert "王芳" not in history
        assert "0000 1234" not in history
    assert_problem(api.get(f"/api/v1/grievances/{gid}", who="admin", reveal=True, reason="x"), 403, "reveal")
    assert_problem(api.get(f"/api/v1/grievances/{gid}", who="caller", reveal=True), 422, "reason")
    whole = api.get(f"/api/v1/grievances/{gid}", who="caller", reveal=True, reason="回访 call-back").json()
    assert (whole["resident_name"], whole["resident_phone"]) == ("王芳", "139 0000 1234")
    report_page = api.get(f"/api/v1/grievances/{gid}/history.html", who="caller", reveal=True, reason="回访").text
    assert "王芳" in report_page
    (second, first) = api.get("/api/v1/audit/disclosures", who="auditor", grievance_id=str(gid)).json()
    assert (first["reader"], first["channel"], first["reason"]) == ("caller-zhou", "http: grievance", "回访 call-back")
    assert second["channel"] == "http: history.html"
    assert_problem(api.get("/api/v1/audit/disclosures", who="street"), 403, "role")
