"""What the HTTP service sends, held to the standards it claims: every problem is RFC 9457 problem details with
the same members, and every route sends one Content-Type, the one its OpenAPI document lists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar.testing import TestClient

from adapters.audit.checkpoint import Signer
from adapters.audit.notary import Notary
from adapters.composition import build_http_services, build_transparency
from adapters.http.app import create_app
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.settings import Settings
from engine.access import Role
from tests.scenario import GRID, HOUSEHOLD, STREET

TOKENS = {"admin": ("admin-qian", Role.ADMIN, None), "street": ("supervisor-wang", Role.SUPERVISOR, STREET),
          "worker": ("grid-worker-li", Role.GRID_WORKER, GRID)}  # fmt: skip
# RFC 9457's members, and the three every problem of this service adds.
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code", "field", "reason"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    services, projection = build_http_services(Settings(database_url=f"sqlite:///{tmp_path}/g.db"))
    services.tokens = TokenBook([TokenEntry(name=n, role=r, unit_id=u, sha256=digest(k)) for k, (n, r, u)
                                 in TOKENS.items()], services.chain.chart)  # fmt: skip
    with TestClient(app=create_app(services)) as test_client:
        test_client.headers["Authorization"] = "Bearer admin"
        test_client.app.state["catch_up"] = projection.catch_up
        # Checkpoints the notary would publish, so that the log's routes answer (and not only their 404s).
        services.checkpoints_dir = tmp_path / "checkpoints"
        services.checkpoints_dir.mkdir()
        notary = Notary(Signer("test/log", Ed25519PrivateKey.generate()), build_transparency(services.chain),
                        services.checkpoints_dir)  # fmt: skip
        test_client.app.state["notary"] = notary.sign_if_grown
        yield test_client
    services.chain.close()


def _report(client: TestClient[Any]) -> str:
    gid = str(uuid4())
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    answer = client.post("/api/v1/commands", json={"kind": "report", "command_id": str(uuid4()), "grievance_id": gid,
                                                   "occurred_at": at, "unit_id": HOUSEHOLD, "category": "parking",
                                                   "title": "车位", "description": "没车位"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    client.app.state["catch_up"]()
    client.app.state["notary"]()
    return gid


def test_every_kind_of_problem_has_the_same_members_and_a_code(client: TestClient[Any]) -> None:
    """401, 403, 404, 405, 400, 413 and 422 alike: type, title, status, detail, and the service's code, field and
    reason; the type ends in the code."""
    gid = _report(client)
    bearer = {"Authorization": "Bearer street"}
    problems = {
        "no token": client.get("/api/v1/grievances", headers={"Authorization": ""}),
        "a bad token": client.get("/api/v1/grievances", headers={"Authorization": "Bearer nope"}),
        "a role that may not": client.get("/api/v1/audit/disclosures", headers=bearer),
        "outside the jurisdiction": client.get("/api/v1/grievances", params={"unit": "st-chengdong"}, headers=bearer),
        "a command refused for its role": client.post("/api/v1/commands", json={"kind": "escalate"}, headers=bearer),
        "no such grievance": client.get(f"/api/v1/grievances/{uuid4()}"),
        "no such route": client.get("/api/v1/nowhere"),
        "a method not allowed": client.put("/api/v1/commands", json={}),
        "a bad parameter": client.get(f"/api/v1/grievances/{gid}", params={"version": "x"}),
        "a malformed command": client.post("/api/v1/commands", content=b"{"),
        "a batch too large": client.post("/api/v1/commands", json=[{}] * 1001),
        "a value refused": client.get(f"/api/v1/grievances/{gid}", params={"version": 1, "at": "2026-01-01T00:00:00Z"}),
    }
    statuses = set()
    for what, answer in problems.items():
        assert answer.headers["content-type"] == "application/problem+json", what
        problem = answer.json()
        assert set(problem) >= PROBLEM_MEMBERS, f"{what}: {problem}"
        assert problem["status"] == answer.status_code, what
        assert problem["type"].endswith("/" + problem["code"]), what
        assert all(isinstance(problem[m], str) and problem[m] for m in PROBLEM_MEMBERS - {"status"}), what
        statuses.add(answer.status_code)
    assert statuses == {400, 401, 403, 404, 405, 413, 422}
    assert (problems["no token"].json()["code"], problems["a role that may not"].json()["code"]) == (
        "not_authenticated", "forbidden")  # fmt: skip


def _filled(path: str, gid: str) -> str:
    return (path.replace("{grievance_id}", gid).replace("{unit_id}", STREET).replace("{request_id}", gid + ".json")
            .replace("{entry_id}", ENTRY))  # fmt: skip


ENTRY = "m-standards"


def _join(client: TestClient[Any]) -> None:
    """A member on the roster, for its route."""
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    answer = client.post("/api/v1/roster", json={"verb": "join", "command_id": f"join-{uuid4()}", "entry_id": ENTRY,
                                                 "occurred_at": at, "kind": "member", "unit_id": HOUSEHOLD,
                                                 "name": "王五"})  # fmt: skip
    assert answer.status_code in (200, 422), answer.text  # 422: joined by an earlier test on this store


def _required(path: str) -> dict[str, str]:
    """The query parameters a path cannot go without."""
    if path.endswith("/log/consistency"):
        return {"from": "0", "to": "1"}
    return {"from": "2026-01-01", "to": "2026-01-31"} if path.endswith("/daily") else {}


def test_every_route_sends_one_content_type_and_the_one_documented(client: TestClient[Any]) -> None:
    """Each GET of the OpenAPI document, the page, the assets and the document itself: one media type, with at
    most one charset (text/html once was `text/html; charset=utf-8; charset=utf-8`), as documented."""
    gid = _report(client)
    _join(client)
    document = client.get("/schema/openapi.json").json()
    seen: dict[str, str] = {}
    for path, operations in document["paths"].items():
        if "get" not in operations:
            continue
        answer = client.get(_filled(path, gid), params={**_required(path), "api_key": "admin"})
        assert answer.status_code == 200, f"{path}: {answer.text}"
        documented = operations["get"]["responses"]["200"]["content"]
        seen[path] = answer.headers["content-type"]
        assert seen[path] in documented or seen[path].removesuffix("; charset=utf-8") in documented, (path, seen[path])
    for path in ("/", "/assets/dashboard.js", "/assets/dashboard.css", "/assets/plotly.min.js", "/schema",
                 "/schema/openapi.json"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 200, path
        seen[path] = answer.headers["content-type"]
    assert len(seen) >= 25
    for path, content_type in seen.items():
        assert len(re.findall("charset", content_type)) <= 1, (path, content_type)
    assert seen["/api/v1/grievances/{grievance_id}/history.html"] == "text/html; charset=utf-8"
    assert seen["/"] == "text/html; charset=utf-8"
    assert seen["/open311/v2/requests.json"] == "application/json; charset=utf-8"


def test_the_document_asks_a_token_exactly_where_the_server_does(client: TestClient[Any]) -> None:
    """An operation whose document lists bearer security answers 401 without a token; one that lists none (the
    health check, Open311, whose key is its own `api_key`) answers without one."""
    gid = _report(client)
    document = client.get("/schema/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = client.request(method, _filled(path, gid), params=_required(path), headers={"Authorization": ""})
            assert (answer.status_code == 401) == bool(operation.get("security")), (method, path, answer.text)


def _formats(schema: Any) -> set[str]:
    if isinstance(schema, list):
        return set().union(*(_formats(s) for s in schema))
    if not isinstance(schema, dict):
        return set()
    return ({schema["format"]} if "format" in schema else set()) | _formats(list(schema.values()))


def test_every_time_parameter_is_documented_as_a_date_time(client: TestClient[Any]) -> None:
    """Times in (`at`, Open311's `start_date` and `end_date`) are RFC 3339 date-times, days are dates, months a
    pattern: a client generated from the document sends what the server reads."""
    document = client.get("/schema/openapi.json").json()
    times = {}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                name, schema = parameter["name"], parameter["schema"]
                if name in ("at", "start_date", "end_date"):
                    times[(path, name)] = _formats(schema)
                elif path.endswith("/daily") and name in ("from", "to"):
                    assert _formats(schema) == {"date"}, (path, name)
                elif path.endswith("/rates") and name in ("from", "to"):
                    assert schema["pattern"] == r"^\d{4}-(0[1-9]|1[0-2])$", (path, name)
    assert len(times) >= 5
    assert all(formats == {"date-time"} for formats in times.values()), times
