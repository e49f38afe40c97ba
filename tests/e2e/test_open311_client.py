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
    with served(f"sqlite:///{tmp_path}/g.db", TOKENS, tmp_path / "serve.log") as base:
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
        assert (one["status"], one["address_id"], one["description"]) == ("open", HOUSEHOLD, "三楼暖气不热")
        assert "Li" not in str(one), "no resident's personal detail is shown"
        filed_by = httpx.get(base + f"/api/v1/grievances/{request_id}", headers={"Authorization": "Bearer gw-token"})
        assert filed_by.json()["resident_name"] == "Li", "kept, sealed, for those who may read the grievance"
        assert client.get_service_requests(status="closed") == []
