"""The roster over HTTP (/api/v1/roster): joined, moved and left under the token's holder and the access policy,
read with people's names masked, and claims over /api/v1/commands refused for claimants not on it."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from tests.e2e.test_http_api import Api, api, now, report
from tests.scenario import BUILDING, GRID, HOUSEHOLD

__all__ = ["api"]  # the fixture, shared with the API's own tests


def join(entry_id: str, kind: str = "member", unit: str = HOUSEHOLD, **extra: Any) -> dict[str, Any]:
    return {"verb": "join", "command_id": str(uuid4()), "entry_id": entry_id, "occurred_at": now(), "kind": kind,
            "unit_id": unit, "name": "王秀英", **extra}  # fmt: skip


def test_a_grid_worker_keeps_the_roster_of_their_grid(api: Api) -> None:
    joined = api.post("/api/v1/roster", join("m-1"))
    assert joined.status_code == 200, joined.text
    assert joined.json() | {"command_id": None} == {"result": "accepted", "command_id": None, "entry_id": "m-1",
                                                   "verb": "join", "version": 1, "on_roster": True,
                                                   "unit_id": HOUSEHOLD, "duplicate": False}  # fmt: skip
    moved = api.post("/api/v1/roster", {"verb": "move", "command_id": "mv", "entry_id": "m-1", "occurred_at": now(1),
                                        "to_unit_id": BUILDING})  # fmt: skip
    assert moved.json()["unit_id"] == BUILDING
    shown = api.get("/api/v1/roster/m-1", who="worker").json()
    assert (shown["name"], shown["unit_id"], shown["kind"]) == ("王**", BUILDING, "member")
    listed = api.get("/api/v1/roster", who="street", unit=GRID, below="true").json()
    # The household keeps its roster, empty now: nobody claims there until someone joins it.
    assert sorted((r["unit_id"], [e["entry_id"] for e in r["entries"]]) for r in listed) == [
        (BUILDING, ["m-1"]),
        (HOUSEHOLD, []),
    ]
    assert "王秀英" not in str(listed)
    before = api.get("/api/v1/roster", who="worker", unit=HOUSEHOLD, at=now(0.5)).json()
    assert [e["entry_id"] for e in before[0]["entries"]] == ["m-1"]
    left = api.post("/api/v1/roster", {"verb": "leave", "command_id": "lv", "entry_id": "m-1", "occurred_at": now(2)})
    assert left.json()["on_roster"] is False


def test_roster_refusals_are_problems_naming_the_field(api: Api) -> None:
    outside = api.post("/api/v1/roster", join("m-1", unit="mh-chengdong-01-1-1-1"))
    assert (outside.status_code, outside.json()["code"], outside.json()["field"]) == (403, "forbidden", "unit_id")
    malformed = api.post("/api/v1/roster", join("m 1"))
    assert (malformed.status_code, malformed.json()["field"]) == (400, "entry_id")
    wrong = api.post("/api/v1/roster", join("g-1", kind="party_group", unit=GRID))
    assert (wrong.status_code, wrong.json()["code"], wrong.json()["field"]) == (422, "wrong_level", "unit_id")
    supervisor = api.post("/api/v1/roster", join("m-2"), who="street")
    assert (supervisor.status_code, supervisor.json()["field"]) == (403, "role")
    missing = api.get("/api/v1/roster/nobody", who="worker")
    assert missing.status_code == 404
    batch = api.post("/api/v1/roster", [join("m-3"), join("m 4"), join("m-3")]).json()
    assert [r["result"] for r in batch] == ["accepted", "rejected", "rejected"]
    assert batch[2]["code"] == "roster_id_taken"


def test_a_claim_by_someone_not_on_the_roster_is_refused(api: Api) -> None:
    assert api.post("/api/v1/roster", join("m-1")).status_code == 200
    body = report()
    assert api.post("/api/v1/commands", body).status_code == 200
    claim = {"kind": "claim", "command_id": str(uuid4()), "grievance_id": body["grievance_id"],
             "occurred_at": now(1), "unit_id": HOUSEHOLD, "mode": "member"}  # fmt: skip
    refused = api.post("/api/v1/commands", {**claim, "claimant": "stranger"})
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (422, "not_on_roster", "claimant")
    mismatch = api.post("/api/v1/commands", {**claim, "claimant": "m-1", "mode": "group"})
    assert (mismatch.json()["code"], mismatch.json()["field"]) == ("claim_mode_mismatch", "mode")
    for_them = api.post("/api/v1/commands", {**claim, "claimant": "m-1"})  # the grid worker, for the member
    assert (for_them.status_code, for_them.json()["code"], for_them.json()["field"]) == (422, "does_not_act_for",
                                                                                         "actor")  # fmt: skip
    assert api.post("/api/v1/commands", {**claim, "claimant": "m-1"}, who="member").json()["status"] == "claimed"
    shown = api.get(f"/api/v1/grievances/{body['grievance_id']}").json()
    assert shown["claimant_then"]["kind"] == "member"
    assert shown["claimant_then"]["unit_id"] == HOUSEHOLD
    assert "*" in shown["claimant_then"]["name"]  # a person's name, masked


def test_who_acts_for_a_body_is_named_again_over_http(api: Api) -> None:
    assert api.post("/api/v1/roster", join("m-1")).status_code == 200
    assert api.post("/api/v1/roster", join("grp-1", kind="party_group", unit=BUILDING)).status_code == 200
    named = api.post("/api/v1/roster", {"verb": "represent", "command_id": "rp", "entry_id": "grp-1",
                                        "occurred_at": now(1), "representatives": ["m-1"]})  # fmt: skip
    assert (named.status_code, named.json()["verb"], named.json()["version"]) == (200, "represent", 2)
    assert api.get("/api/v1/roster/grp-1", who="worker").json()["representatives"] == ["m-1"]
    twice = api.post("/api/v1/roster", {"verb": "represent", "command_id": "rp2", "entry_id": "grp-1",
                                        "occurred_at": now(2), "representatives": ["m-1"]})  # fmt: skip
    assert (twice.status_code, twice.json()["field"]) == (422, "representatives")
