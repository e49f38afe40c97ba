"""The Open311 facade as an existing civic client sees it: the PyPI `georeport` client against `grievance serve`."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from georeport import GeoReport

from tests.http_server import served
from tests.scenario import HOUSEHOLD

TOKENS = {"gw-token": ("grid-worker-li", "grid_worker", "gr-chengxi-03-2")}


def test_georeport_reads_what_a_grid_worker_filed(tmp_path: Path) -> None:
    """Where public reads are turned on, as the standard has them, an existing client reads requests; they
    never carry the resident's words or name."""
    public = {"GRIEVANCE_OPEN311_PUBLIC": "on"}
    with served(f"sqlite:///{tmp_path}/g.db", TOKENS, tmp_path / "serve.log", settings=public) as base:
        client = GeoReport(base + "/open311/v2", api_key="gw-token")
        services = client.get_service_list()
        assert {s["service_code"] for s in services} >= {"parking", "utilities", "elderly_care"}

        filed = httpx.post(base + "/open311/v2/requests.json", data={
            "api_key": "gw-token", "service_code": "utilities", "address_id": HOUSEHOLD,
            "description": "三楼暖气不热", "first_name": "Li"})  # fmt: skip
        assert filed.status_code == 201, filed.text
        request_id = filed.json()[0]["service_request_id"]

        # The service's own projection thread brings the views up to date within moments.
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


def test_open311_reads_are_off_unless_turned_on(tmp_path: Path) -> None:
    with served(f"sqlite:///{tmp_path}/g.db", TOKENS, tmp_path / "serve.log") as base:
        assert GeoReport(base + "/open311/v2").get_service_list()  # the service list is no one's data
        refused = httpx.get(base + "/open311/v2/requests.json")
        assert refused.status_code == 403
        assert refused.json()[0]["description"].startswith("api_key:")
        assert httpx.get(base + "/open311/v2/requests.json", params={"api_key": "gw-token"}).json() == []
