"""The HTTP API fuzzed by schemathesis from its own OpenAPI document: whatever a client sends, no request
is a server error, every answer is what the document says (its status, its media type and its body's schema),
every refusal is a problem naming a field, and a refused request stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.audit.checkpoint import Signer
from adapters.audit.notary import Notary
from adapters.composition import build_http_services
from adapters.http.app import create_app
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.settings import Settings
from engine.access import Role
from tests.conftest import OPERATOR, T0
from tests.scenario import HOUSEHOLD

TOKENS = {"admin": Role.ADMIN, "worker": Role.GRID_WORKER, "street": Role.SUPERVISOR}
# What each answer is checked for, beyond "no 500": its status is one the document lists, its Content-Type the
# one listed for that status, its headers and its body as the document's schema says.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]  # fmt: skip
# Enough to meet every status and media type each operation documents, few enough for the suite's time.
EXAMPLES = 25


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = tmp_path_factory.mktemp("fuzz") / "g.db"
    services, projection = build_http_services(Settings(database_url=f"sqlite:///{db}", durability="off"))
    services.tokens = TokenBook([TokenEntry(name=f"{k}-1", role=r, unit_id=None if r is Role.ADMIN else "st-chengxi",
                                            sha256=digest(f"fuzz-{k}")) for k, r in TOKENS.items()],
                                services.chain.chart)  # fmt: skip
    # One long ago, one within Open311's default 90 days, so that its list answers with a request.
    for n, at in enumerate((T0, services.clock() - timedelta(hours=1))):
        services.intake.submit_json(
            b'{"kind": "report", "command_id": "seed-%d", "grievance_id": "%s", "actor": "a", "occurred_at": "%s", '
            b'"unit_id": "%s", "category": "parking", "title": "t", "description": "d"}'
            % (n, str(uuid4()).encode(), at.isoformat().encode(), HOUSEHOLD.encode()),
            principal=OPERATOR,
        )
    projection.catch_up()
    # A checkpoint published, so that proofs are answered (not only their 404s).
    services.checkpoints_dir = db.parent / "checkpoints"
    services.checkpoints_dir.mkdir()
    assert services.transparency is not None
    Notary(Signer("fuzz.test/log", Ed25519PrivateKey.generate()), services.transparency,
           services.checkpoints_dir).sign_if_grown()  # fmt: skip
    # Open311's reads open to anyone, so that their answers (not only their 403s) are checked too.
    services.open311_public = True
    app = create_app(services)
    yield app, services
    services.chain.close()


def test_every_answer_is_as_documented_and_every_refusal_names_a_field(service: Any) -> None:
    app, services = service
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    operations: list[Any] = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    for operation in operations:
        # schemathesis's pytest plugin does not run under pytest 9 yet; its strategies drive Hypothesis here.
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                              operation.as_strategy(GenerationMode.NEGATIVE)))  # fmt: skip
        def answers_well(case: Any) -> None:
            for who in ("street", "worker", "admin", None):  # each role, and no token at all
                before = services.chain.recorder.max_notification_id()
                headers = {"Authorization": f"Bearer fuzz-{who}"} if who else {}
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)
                if response.status_code >= 400 and case.path.startswith("/api/"):
                    problem = response.json()
                    assert problem["field"], response.text
                    assert problem["code"], response.text
                    assert services.chain.recorder.max_notification_id() == before, "a refused request stored"

        answers_well()
