"""Every route of the OpenAPI document × every role × inside and outside the reader's jurisdiction: what is
outside answers 403 or 404, never data, and a new route cannot ship without saying how it is scoped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from adapters.composition import build_http_services
from adapters.http.app import create_app
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.settings import Settings
from engine.access import Role
from tests.scenario import GRID, HOUSEHOLD, STREET

OUTSIDE_HOUSEHOLD, OUTSIDE_STREET = "mh-chengdong-01-1-1-1", "st-chengdong"
ROLES = {
    "grid_worker": (Role.GRID_WORKER, GRID),
    "supervisor": (Role.SUPERVISOR, STREET),
    "auditor": (Role.AUDITOR, None),
    "admin": (Role.ADMIN, None),
}
READS_EVERYTHING = {"auditor", "admin"}
# How each route is asked about one place: by a grievance there, or by a unit there ("unit" as a query
# parameter or in the path). Routes open to everyone say so. A route missing here fails the test below.
SCOPED_BY_GRIEVANCE = {
    "/api/v1/grievances/{grievance_id}",
    "/api/v1/grievances/{grievance_id}/history",
    "/api/v1/grievances/{grievance_id}/verify",
    "/api/v1/grievances/{grievance_id}/history.jsonl",
    "/api/v1/grievances/{grievance_id}/history.html",
}
SCOPED_BY_UNIT = {
    "/api/v1/grievances": {},
    "/api/v1/dashboard/headline": {},
    "/api/v1/dashboard/rates": {},
    "/api/v1/dashboard/counts": {},
    "/api/v1/dashboard/daily": {"from": "2020-01-01", "to": "2030-12-31"},
    "/api/v1/dashboard/funnel": {},
    "/api/v1/dashboard/durations": {},
    "/api/v1/dashboard/overdue": {},
    "/api/v1/dashboard/points": {},
    "/api/v1/chart/units/{unit_id}": {},
    "/api/v1/callbacks": {},
    "/api/v1/roster": {},
}
# Asked about one roster entry, registered inside or outside the reader's jurisdiction: outside is 404.
SCOPED_BY_ENTRY = {"/api/v1/roster/{entry_id}"}
AUDITORS_ONLY = {"/api/v1/audit/disclosures"}
# Of no place: what every reader with a token may see (the names of the chain's seven steps).
ANY_READER = {"/api/v1/chart/levels"}
# Answered once the notary has published a checkpoint, which this store has not: the log's signed heads and the
# proofs between them (hashes and sizes, for any reader), and a grievance's proof (scoped by grievance).
# tests/e2e/test_transparency_http.py asks them with a checkpoint, the proof from outside its place too (404).
ANSWERED_ONCE_CHECKPOINTED = {
    "/api/v1/checkpoints/latest",
    "/api/v1/log/consistency",
    "/api/v1/grievances/{grievance_id}/proof",
}
OPEN_TO_ALL = {"/api/v1/health", "/open311/v2/services.json", "/open311/v2/requests.json",
               "/open311/v2/requests/{request_id}"}  # fmt: skip
WRITES = {"/api/v1/commands", "/open311/v2/requests.json", "/api/v1/roster"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient[Any], dict[str, str]]]:
    db: Path = tmp_path_factory.mktemp("scoping") / "g.db"
    services, projection = build_http_services(Settings(database_url=f"sqlite:///{db}"))
    services.tokens = TokenBook(
        [TokenEntry(name=f"{k}-1", role=r, unit_id=u, sha256=digest(f"t-{k}")) for k, (r, u) in ROLES.items()],
        services.chain.chart,
    )
    with TestClient(app=create_app(services)) as c:
        grievances = {}
        for where, unit in (("inside", HOUSEHOLD), ("outside", OUTSIDE_HOUSEHOLD)):
            gid = str(uuid4())
            reported = c.post("/api/v1/commands", headers={"Authorization": "Bearer t-admin"}, json={
                "kind": "report", "command_id": f"r-{where}", "grievance_id": gid, "occurred_at": _now(),
                "unit_id": unit, "category": "parking", "title": "t", "description": "d"})  # fmt: skip
            assert reported.status_code == 200, reported.text
            grievances[where] = gid
            joined = c.post("/api/v1/roster", headers={"Authorization": "Bearer t-admin"}, json={
                "verb": "join", "command_id": f"j-{where}", "entry_id": f"m-{where}", "occurred_at": _now(),
                "kind": "member", "unit_id": unit, "name": "王五"})  # fmt: skip
            assert joined.status_code == 200, joined.text
        projection.catch_up()
        yield c, grievances
    services.chain.close()


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _routes(c: TestClient[Any]) -> list[tuple[str, str]]:
    document = c.get("/schema/openapi.json").json()
    return [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]


def test_every_route_says_how_it_is_scoped(client: tuple[TestClient[Any], dict[str, str]]) -> None:
    c, _ = client
    for method, path in _routes(c):
        if method == "GET":
            known = (SCOPED_BY_GRIEVANCE | set(SCOPED_BY_UNIT) | OPEN_TO_ALL | AUDITORS_ONLY | ANY_READER
                     | ANSWERED_ONCE_CHECKPOINTED | SCOPED_BY_ENTRY)  # fmt: skip
            assert path in known, f"{path}: how is it scoped?"
        else:
            assert path in WRITES, f"{method} {path}: a write the application's policy must check"


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("where", ["inside", "outside"])
def test_every_read_answers_inside_and_hides_outside(
    client: tuple[TestClient[Any], dict[str, str]], role: str, where: str
) -> None:
    c, grievances = client
    headers = {"Authorization": f"Bearer t-{role}"}
    visible = where == "inside" or role in READS_EVERYTHING
    for path in sorted(SCOPED_BY_GRIEVANCE):
        answer = c.get(path.format(grievance_id=grievances[where]), headers=headers)
        assert answer.status_code == (200 if visible else 404), (path, role, where, answer.text)
    for path, params in sorted(SCOPED_BY_UNIT.items()):
        unit = {"inside": STREET if role == "supervisor" else GRID, "outside": OUTSIDE_STREET}[where]
        asked = c.get(path.format(unit_id=unit), headers=headers,
                      params={**params, **({} if "{unit_id}" in path else {"unit": unit})})  # fmt: skip
        assert asked.status_code == (200 if visible else 403), (path, role, where, asked.text)
    for path in sorted(SCOPED_BY_ENTRY):
        answer = c.get(path.format(entry_id=f"m-{where}"), headers=headers)
        assert answer.status_code == (200 if visible else 404), (path, role, where, answer.text)
    for path in sorted(ANY_READER):
        assert c.get(path, headers=headers).status_code == 200, (path, role)
        assert c.get(path).status_code == 401, path
    for path in sorted(AUDITORS_ONLY):
        asked = c.get(path, headers=headers)
        assert asked.status_code == (200 if role in READS_EVERYTHING else 403), (path, role, asked.text)
