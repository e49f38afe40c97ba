"""The Open311 facade as clients nobody here wrote see it: the PyPI `georeport` client and plain HTTP written
from the GeoReport v2 spec (wiki.open311.org/GeoReport_v2), against `grievance serve`. Each test names the
spec's section and the words it checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from georeport import GeoReport

from tests.http_server import served
from tests.scenario import BUILDING, GRID, HOUSEHOLD

TOKENS = {
    "gw-token": ("grid-worker-li", "grid_worker", "gr-chengxi-03-2"),
    "admin-token": ("admin-qian", "admin", None),
    "other-grid": ("grid-worker-zhao", "grid_worker", "gr-chengxi-03-1"),
}
# Every field GET Service Requests' "Response" table names, in its order.
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]  # fmt: skip


def w3(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Open311:
    """A served service with grievances reported 60, 30 and 1 hours ago (the last escalated, then settled)."""

    base: str
    now: datetime
    old: str  # reported 60 h ago, open, parking
    middle: str  # reported 30 h ago, open, utilities
    escalated: str  # reported 1 h ago at the household, claimed, escalated to the building, claimed, resolved
    times: dict[str, datetime]

    @property
    def client(self) -> GeoReport:
        return GeoReport(self.base + "/open311/v2")

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.base + "/open311/v2" + path, params=params)


def _command(base: str, kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    body = {"kind": kind, "command_id": str(uuid4()), "occurred_at": at.isoformat(), **fields}
    answer = httpx.post(base + "/api/v1/commands", json=body, headers={"Authorization": "Bearer admin-token"})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture(scope="module")
def open311(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Open311]:
    tmp = tmp_path_factory.mktemp("open311")
    public = {"GRIEVANCE_OPEN311_PUBLIC": "on"}
    with served(f"sqlite:///{tmp}/g.db", TOKENS, tmp / "serve.log", settings=public) as base:
        now = datetime.now(UTC).replace(microsecond=0)
        ids = {name: str(uuid4()) for name in ("old", "middle", "escalated")}
        times = {"old": now - timedelta(hours=60), "middle": now - timedelta(hours=30),
                 "escalated": now - timedelta(hours=1)}  # fmt: skip
        for name, category in (("old", "parking"), ("middle", "utilities"), ("escalated", "parking")):
            _command(base, "report", times[name], grievance_id=ids[name], unit_id=HOUSEHOLD, category=category,
                     title="楼道堆物", description="王阿姨家门口堆满杂物")  # fmt: skip
        gid, claim = ids["escalated"], {"mode": "member", "claimant": "admin-qian"}
        times["claimed"] = now - timedelta(minutes=50)
        _command(base, "claim", times["claimed"], grievance_id=gid, unit_id=HOUSEHOLD, **claim)
        times["escalated_at"] = now - timedelta(minutes=40)
        _command(base, "escalate", times["escalated_at"], grievance_id=gid)
        yield Open311(base, now, ids["old"], ids["middle"], gid, times)


def _settle(o: Open311) -> None:
    """Claim the escalated one at the building and resolve it there."""
    claim = {"mode": "group", "claimant": "admin-qian"}
    o.times["reclaimed"] = o.now - timedelta(minutes=30)
    claimed = _command(o.base, "claim", o.times["reclaimed"], grievance_id=o.escalated, unit_id=BUILDING, **claim)
    # Claimed: now it "can be expected to be fulfilled" by the claim's deadline.
    one = _one(o, o.escalated, lambda r: r["status_notes"].startswith("claimed"))
    finish_due = datetime.fromisoformat(o.get(f"/requests/{o.escalated}.json").json()[0]["expected_datetime"])
    assert finish_due > o.now, claimed
    assert one["service_notice"] == f"to be settled at 城西第3社区2网格1号楼党小组 by {w3(finish_due)}"
    assert one["updated_datetime"] == w3(o.times["reclaimed"])
    o.times["resolved"] = o.now - timedelta(minutes=20)
    _command(o.base, "resolve", o.times["resolved"], grievance_id=o.escalated, summary="清走了")


def _until(o: Open311, check: Any) -> Any:
    """The service's own projection thread brings the views up to date within moments."""
    for _ in range(200):
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError("the views did not catch up")


def _one(o: Open311, request_id: str, version_check: Any = None) -> dict[str, Any]:
    def fresh() -> dict[str, Any] | None:
        if o.get(f"/requests/{request_id}.json").status_code == 404:
            return None  # not in the views yet
        found = o.client.get_service_request(request_id)
        return found if version_check is None or version_check(found) else None

    found: dict[str, Any] = _until(o, fresh)
    return found


def test_get_service_request_has_every_response_field_and_no_residents_words(open311: Open311) -> None:
    """GET Service Request, "Response": every field of the table, times "in w3 format, eg 2010-01-01T00:00:00Z";
    `description` is never the resident's text (our trust rules; the spec lets fields be null)."""
    one = _one(open311, open311.old)
    assert list(one) == REQUEST_FIELDS
    assert one["requested_datetime"] == w3(open311.times["old"])
    assert (one["status"], one["service_code"], one["service_name"]) == ("open", "parking", "停车管理 Parking")
    assert one["description"] is None
    assert "王阿姨" not in str(one), "nor the resident's name"
    assert "杂物" not in str(one), "nor their words"


def test_an_escalated_request_keeps_its_address_and_names_the_agency_it_waits_at(open311: Open311) -> None:
    """GET Service Request, "Response": `address_id` is "the internal address ID" of the problem's place, which
    an escalation does not move; `agency_responsible` is "the agency responsible for fulfilling or otherwise
    addressing the service request", which it does; `updated_datetime` is "when the service request was last
    modified" (the escalation); `expected_datetime` "when [it] can be expected to be fulfilled" is unknown
    until someone claims it at its new unit, and `service_notice` says what is expected meanwhile."""
    one = _one(open311, open311.escalated, lambda r: "escalated" in r["status_notes"] and r["status"] == "open")
    assert one["address_id"] == HOUSEHOLD, "the place it was reported, not where it was escalated to"
    assert one["address"] == "城西第3社区2网格1号楼党员示范户1"
    assert one["agency_responsible"] == "城西第3社区2网格1号楼党小组", "the building group it now waits at"
    assert one["updated_datetime"] == w3(open311.times["escalated_at"])
    assert one["requested_datetime"] == w3(open311.times["escalated"])
    assert one["expected_datetime"] is None
    assert one["service_notice"].startswith("to be claimed at 城西第3社区2网格1号楼党小组 by ")
    assert one["status_notes"] == "waiting to be claimed at 城西第3社区2网格1号楼党小组, escalated 1 time"


def test_a_closed_request_was_updated_when_it_was_closed(open311: Open311) -> None:
    """GET Service Requests, "Response", `updated_datetime`: "For requests with status=closed, this will be the
    date the request was closed"; `agency_responsible` is the unit that settled it."""
    _settle(open311)
    one = _one(open311, open311.escalated, lambda r: r["status"] == "closed")
    assert one["updated_datetime"] == w3(open311.times["resolved"])
    assert (one["address_id"], one["agency_responsible"]) == (HOUSEHOLD, "城西第3社区2网格1号楼党小组")
    assert (one["expected_datetime"], one["service_notice"]) == (None, None)
    assert one["status_notes"] == "resolved at 城西第3社区2网格1号楼党小组, escalated 1 time"
    listed = open311.client.get_service_requests(status="closed")
    assert [r["service_request_id"] for r in listed] == [open311.escalated]


def test_start_and_end_date_default_to_the_most_recent_90_days(open311: Open311) -> None:
    """GET Service Requests, "Optional Arguments", start_date/end_date: "When not specified, the range defaults
    to most recent 90 days"; given only start_date, the 90 days from it; only end_date, the 90 up to it."""
    o = open311
    everything = _until(o, lambda: len(o.client.get_service_requests()) == 3 and o.client.get_service_requests())
    assert [r["service_request_id"] for r in everything] == [o.escalated, o.middle, o.old], "newest first"
    since = o.client.get_service_requests(start_date=w3(o.now - timedelta(hours=40)))
    assert [r["service_request_id"] for r in since] == [o.escalated, o.middle]
    until = o.client.get_service_requests(end_date=w3(o.now - timedelta(hours=20)))
    assert [r["service_request_id"] for r in until] == [o.middle, o.old]
    long_ago = o.now - timedelta(days=200)
    assert o.client.get_service_requests(start_date=w3(long_ago)) == [], "90 days from then: none of ours"
    both = o.client.get_service_requests(start_date=w3(o.now - timedelta(hours=35)),
                                         end_date=w3(o.now - timedelta(hours=25)))  # fmt: skip
    assert [r["service_request_id"] for r in both] == [o.middle]
    # "Optional" means that the response should be the same whether a parameter is passed and is empty or is
    # not passed at all.
    assert o.get("/requests.json", start_date="", end_date="", status="").json() == everything


def test_a_range_may_not_span_more_than_90_days(open311: Open311) -> None:
    """GET Service Requests, start_date: "may not span more than 90 days"; "Errors": 400 for "any other error",
    with a body of `[{code, description}]` in JSON's content type."""
    o = open311
    wide = o.get("/requests.json", start_date=w3(o.now - timedelta(days=91)), end_date=w3(o.now))
    assert wide.status_code == 400
    assert wide.headers["content-type"] == "application/json; charset=utf-8"
    assert wide.json() == [{"code": 400, "description": "start_date: the range from start_date to end_date may "
                                                        "not span more than 90 days"}]  # fmt: skip
    backwards = o.get("/requests.json", start_date=w3(o.now), end_date=w3(o.now - timedelta(days=1)))
    assert backwards.json()[0]["description"].startswith("end_date:")
    # W3C's datetime profile and RFC 3339 agree on what is taken here: every channel reads times alike.
    assert o.get("/requests.json", start_date="yesterday").json() == [
        {"code": 400, "description": "start_date: 'yesterday' is not a time in RFC 3339 with an offset, e.g. "
                                     "2021-01-01T00:00+08:00 or 2021-01-01T00:00:00Z"}]  # fmt: skip
    assert o.get("/requests.json", start_date="2010-01-01T00:00:00").json()[0]["description"].startswith(
        "start_date:"), "Date/time format: timezone information must be included"  # fmt: skip


def test_status_takes_several_values_comma_delimited(open311: Open311) -> None:
    """GET Service Requests, status: "defaults to all statuses; can be declared multiple times, comma
    delimited; Options: open, closed"."""
    o = open311
    _until(o, lambda: len(o.client.get_service_requests()) == 3)
    both = o.client.get_service_requests(status="open,closed")
    assert len(both) == 3
    assert both == o.client.get_service_requests()
    opened = o.client.get_service_requests(status="open")
    assert {r["status"] for r in opened} == {"open"}
    assert o.client.get_service_requests(status="open,") == opened, "an empty value is as if not given"
    assert o.get("/requests.json", status="open,lost").json() == [
        {"code": 400, "description": "status: 'lost' is not open or closed"}]  # fmt: skip


def test_service_code_takes_several_codes_comma_delimited(open311: Open311) -> None:
    """GET Service Requests, service_code: "defaults to all service codes when not declared; can be declared
    multiple times, comma delimited"."""
    o = open311
    _until(o, lambda: len(o.client.get_service_requests()) == 3)
    parking = o.client.get_service_requests(service_code="parking")
    assert [r["service_request_id"] for r in parking] == [o.escalated, o.old]
    both = o.client.get_service_requests(service_code="parking,utilities")
    assert [r["service_request_id"] for r in both] == [o.escalated, o.middle, o.old]
    assert o.get("/requests.json", service_code="parking,nope").status_code == 400


def test_service_request_id_takes_a_comma_list_and_overrides_all_other_arguments(open311: Open311) -> None:
    """GET Service Requests, service_request_id: "multiple service_request_id can be declared; comma
    delimited. This overrides all other arguments." """
    o = open311
    _until(o, lambda: len(o.client.get_service_requests()) == 3)
    ids = f"{o.old},{o.middle}"
    listed = o.client.get_service_requests(service_request_id=ids)
    assert {r["service_request_id"] for r in listed} == {o.old, o.middle}
    # Arguments that alone would exclude both are overridden.
    overriding = o.client.get_service_requests(service_request_id=ids, status="closed", service_code="safety",
                                               start_date=w3(o.now - timedelta(days=200)),
                                               end_date=w3(o.now - timedelta(days=199)))  # fmt: skip
    assert overriding == listed
    assert o.get("/requests.json", service_request_id="not-a-uuid").json() == [
        {"code": 400, "description": "service_request_id: each id is a UUID, comma-delimited"}]  # fmt: skip


def test_jurisdiction_id_is_an_optional_argument_here(open311: Open311) -> None:
    """Definitions, jurisdiction_id: "Implementations can ignore this parameter and treat it as an Optional
    Argument if the implementation only serves one jurisdiction", as this one does."""
    o = open311
    with_it = GeoReport(o.base + "/open311/v2", jurisdiction="yongji.gov.cn")
    assert with_it.get_service_list() == o.client.get_service_list()
    assert with_it.get_service_requests() == o.client.get_service_requests()
    assert with_it.get_service_request(o.old) == o.client.get_service_request(o.old)


def test_an_unknown_request_is_404_and_the_service_list_is_as_the_spec_has_it(open311: Open311) -> None:
    """Errors: "HTTP error codes should always be 404 for resources that don't exist"; GET Service List,
    "Response": service_code, service_name, description, metadata (true/false), type (realtime), keywords,
    group; "Format Support": JSON is `application/json; charset=utf-8`."""
    o = open311
    missing = o.get(f"/requests/{uuid4()}.json")
    assert (missing.status_code, missing.json()[0]["code"]) == (404, 404)
    services = o.get("/services.json")
    assert services.headers["content-type"] == "application/json; charset=utf-8"
    for service in services.json():
        assert list(service) == ["service_code", "service_name", "description", "metadata", "type", "keywords",
                                 "group"]  # fmt: skip
        assert (service["metadata"], service["type"]) == (False, "realtime")


def test_georeport_reads_what_a_grid_worker_filed(tmp_path: Path) -> None:
    """POST Service Request: the "Response" is `service_request_id` (realtime, no token), `service_notice`,
    `account_id`; what the resident wrote and their name are kept sealed, never shown."""
    public = {"GRIEVANCE_OPEN311_PUBLIC": "on"}
    with served(f"sqlite:///{tmp_path}/g.db", TOKENS, tmp_path / "serve.log", settings=public) as base:
        client = GeoReport(base + "/open311/v2", api_key="gw-token")
        services = client.get_service_list()
        assert {s["service_code"] for s in services} >= {"parking", "utilities", "elderly_care"}

        filed = httpx.post(base + "/open311/v2/requests.json", data={
            "api_key": "gw-token", "service_code": "utilities", "address_id": HOUSEHOLD,
            "description": "三楼暖气不热", "first_name": "Li"})  # fmt: skip
        assert filed.status_code == 201, filed.text
        assert list(filed.json()[0]) == ["service_request_id", "service_notice", "account_id"]
        request_id = filed.json()[0]["service_request_id"]

        for _ in range(200):
            if client.get_service_requests(status="open"):
                break
            time.sleep(0.05)
        listed = client.get_service_requests(status="open", service_code="utilities")
        assert [r["service_request_id"] for r in listed] == [request_id]
        one = client.get_service_request(request_id)
        assert (one["status"], one["address_id"], one["description"]) == ("open", HOUSEHOLD, None)
        assert "Li" not in str(one), "no resident's personal detail is shown"
        assert "暖气" not in str(listed), "nor the resident's own words"
        filed_by = httpx.get(base + f"/api/v1/grievances/{request_id}", headers={"Authorization": "Bearer gw-token"})
        assert filed_by.json()["resident_name"] == "L*", "kept, sealed, and masked even for those who may read it"
        assert client.get_service_requests(status="closed") == []


def test_filing_names_a_missing_or_unknown_service_code_as_the_spec_says(tmp_path: Path) -> None:
    """POST Service Request, "Possible Errors": "404 - service_code ... was not found", "400 - service_code ...
    was not provided"; Errors: "403 for errors because of wrong or missing api_key"."""
    with served(f"sqlite:///{tmp_path}/g.db", TOKENS, tmp_path / "serve.log") as base:
        form = {"api_key": "gw-token", "address_id": HOUSEHOLD, "description": "路灯坏了"}
        url = base + "/open311/v2/requests.json"
        assert httpx.post(url, data={**form, "service_code": "potholes"}).json() == [
            {"code": 404, "description": "service_code: 'potholes' is not a service; GET services.json lists them"}
        ]
        assert httpx.post(url, data=form).status_code == 400
        assert httpx.post(url, data={**form, "service_code": "safety", "api_key": "nope"}).status_code == 403


def test_a_request_escalated_out_of_the_readers_jurisdiction_is_still_theirs(tmp_path: Path) -> None:
    """GET Service Request and GET Service Requests read with an api_key show what the API would show its
    holder: a request reported in their grid, though escalated to the community above it."""
    with served(f"sqlite:///{tmp_path}/g.db", TOKENS, tmp_path / "serve.log") as base:
        now, gid = datetime.now(UTC).replace(microsecond=0), str(uuid4())
        _command(base, "report", now - timedelta(hours=2), grievance_id=gid, unit_id=HOUSEHOLD, category="safety",
                 title="路灯", description="路灯坏了")  # fmt: skip
        for n, (unit, mode) in enumerate(((HOUSEHOLD, "member"), (BUILDING, "group"), (GRID, "organisation"))):
            _command(base, "claim", now - timedelta(minutes=90 - 20 * n), grievance_id=gid, unit_id=unit, mode=mode,
                     claimant="admin-qian")  # fmt: skip
            _command(base, "escalate", now - timedelta(minutes=80 - 20 * n), grievance_id=gid)
        worker = {"api_key": "gw-token"}
        url = base + f"/open311/v2/requests/{gid}.json"
        for _ in range(200):
            one = httpx.get(url, params=worker)
            if one.status_code == 200 and "escalated 3 times" in one.json()[0]["status_notes"]:
                break
            time.sleep(0.05)
        (request,) = one.json()
        assert (request["address_id"], request["agency_responsible"]) == (HOUSEHOLD, "城西第3社区党组织")
        listed = httpx.get(base + "/open311/v2/requests.json", params=worker).json()
        assert [r["service_request_id"] for r in listed] == [gid]
        elsewhere = {"api_key": "other-grid"}
        assert httpx.get(url, params=elsewhere).status_code == 404, "nobody else's"
        assert httpx.get(base + "/open311/v2/requests.json", params=elsewhere).json() == []


def test_open311_reads_are_off_unless_turned_on(tmp_path: Path) -> None:
    """Errors, "General Errors": "403 - Missing or Invalid API Key (specify in error message)"."""
    with served(f"sqlite:///{tmp_path}/g.db", TOKENS, tmp_path / "serve.log") as base:
        assert GeoReport(base + "/open311/v2").get_service_list()  # the service list is no one's data
        refused = httpx.get(base + "/open311/v2/requests.json")
        assert refused.status_code == 403
        assert refused.json()[0]["description"].startswith("api_key:")
        assert httpx.get(base + "/open311/v2/requests.json", params={"api_key": "gw-token"}).json() == []
