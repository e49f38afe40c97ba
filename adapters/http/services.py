"""What the HTTP handlers work with, built once in the composition root and kept in the app's state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.params import QueryParameter

from adapters.audit.checkpoint import Verifier
from adapters.audit.trail import AuditTrail
from adapters.audit.transparency import Transparency
from adapters.display_zone import DisplayZone
from adapters.http.tokens import TokenBook
from adapters.intake import Intake
from adapters.storage.disclosures import DisclosureLog
from adapters.storage.receipts import Receipts
from engine.access import Principal
from engine.errors import InvalidValue
from engine.roster_book import RosterBook
from engine.service_chain import ServiceChain
from engine.times import FORM, parse_time
from projections.dashboard.health import ViewsWatch
from projections.dashboard.queries import Dashboard
from projections.resident_loop.runner import ResidentLoopProjection
from projections.resident_loop.tables import ResidentLoopTables


@dataclass
class Services:
    """The chain (with its access policy), its intake, the dashboard queries, the audit trail, the tokens and
    the clock."""

    chain: ServiceChain
    intake: Intake
    dashboard: Dashboard
    trail: AuditTrail
    tokens: TokenBook
    # Every full reading of personal data, recorded before it is shown.
    disclosures: DisclosureLog
    # How the dashboard views stand, for /health.
    watch: ViewsWatch
    clock: Callable[[], datetime]
    # Whether Open311's reads are open to anyone (GRIEVANCE_OPEN311_PUBLIC).
    open311_public: bool = False
    # The zone the page and the HTML reports show times in (GRIEVANCE_DISPLAY_TIMEZONE).
    display_zone: DisplayZone = field(default_factory=lambda: DisplayZone())
    # Residents' receipts, which open their own page (/r/{code}); None serves no resident page.
    receipts: Receipts | None = None
    # The resident's loop (callbacks owed, who gave the ratings), and the days a closure waits before a callback.
    resident_loop: ResidentLoopProjection | None = None
    resident_loop_tables: ResidentLoopTables | None = None
    callback_days: int = 7
    # The store's Merkle log, and the directory `grievance notary` publishes checkpoints in (GRIEVANCE_CHECKPOINTS_DIR).
    transparency: Transparency | None = None
    checkpoints_dir: Path | None = None
    # The log's verifier keys (GRIEVANCE_CHECKPOINT_VERIFIER_KEYS): a report names a checkpoint's signer only once
    # its signature checks against one of them.
    checkpoint_verifiers: tuple[Verifier, ...] = ()
    # The roster's commands and questions (/api/v1/roster), on the same chain.
    roster: RosterBook | None = None


def services(state: State) -> Services:
    found: Services = state.services
    return found


def principal(request: Request[object, object, State]) -> Principal:
    """The holder of the request's bearer token; 401 when there is none or it is unknown."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException("send an API token: Authorization: Bearer <token>",
                                     headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    who = services(request.app.state).tokens.authenticate(token.strip())
    if who is None:
        raise NotAuthorizedException("the API token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return who


def require_reader_of(svc: Services, who: Principal, unit_id: str | None) -> str:
    """The unit a read is about (default: the reader's own, or the root), if the reader may see it; else 403."""
    unit = unit_id or who.unit_id or svc.chain.chart.root.id
    if unit not in svc.chain.chart:
        return unit  # the query names the unknown unit in its own error
    if not svc.chain.policy.covers(who, unit):
        raise PermissionDeniedException(f"unit_id: {unit} is outside your jurisdiction ({who.unit_id})")
    return unit


# The token's holder, injected by name into every API handler that declares it.
Reader = NamedDependency[Principal]


# A time a question is asked as of: read by `engine.times`, as every channel reads one (seconds optional).
AsOf = Annotated[str | None, QueryParameter(description=f"As of this time: {FORM}; default now.",
                                            schema_extra={"format": "date-time"})]  # fmt: skip


def moment(svc: Services, at: str | None, field: str = "at") -> datetime:
    """The time `at` names (400 naming `field` if it names none), or the server's clock when not given."""
    if at is None:
        return svc.clock()
    try:
        return parse_time(field, at)
    except InvalidValue as e:
        raise ValidationException(detail=str(e), extra=[{"key": field, "message": e.reason}]) from None
