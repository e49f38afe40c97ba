"""Reading grievances: current state, state at a version or a time, the history with hashes, its
verification and exports, and the filtered list."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Response
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, FromQuery, QueryParameter

from adapters import wire
from adapters.audit.export import as_html, as_json_lines
from adapters.audit.inclusion import included_in_latest
from adapters.http.problems import api_get as get
from adapters.http.services import AsOf, Reader, Services, moment, require_reader_of, services
from adapters.storage.disclosures import Disclosure
from engine.access import Principal
from engine.errors import GrievanceNotFound, InvalidValue
from engine.grievance import Grievance
from projections.dashboard.queries import MAX_OFFSET
from schemas.dashboard import GrievancePage
from schemas.results import GrievanceView, History

# More versions than any grievance's history holds, and within every store's integer range.
MAX_VERSION = 10_000_000


class Verification(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A history's chain recomputed: intact, or the first version whose link is broken and why."""

    grievance_id: UUID
    intact: bool
    version: int | None = None
    reason: str | None = None


def _readable(svc: Services, who: Principal, grievance_id: UUID) -> Grievance:
    """The grievance now, if `who` may read it; 404 alike whether it does not exist or never was theirs, so that
    nobody learns what exists outside their jurisdiction."""
    grievance = svc.chain.grievance(grievance_id)
    if not svc.chain.policy.may_read_grievance(who, grievance):
        raise GrievanceNotFound("grievance_id", f"no grievance {grievance_id}")
    return grievance


Reveal = Annotated[bool, QueryParameter(description="Show residents' names and phones whole (masked otherwise): "
                                                    "needs the permission, and a reason; every such reading is "
                                                    "recorded for auditors.")]  # fmt: skip
Reason = Annotated[str | None, QueryParameter(max_length=500, description="Why they must be seen whole.")]


def _revealing(svc: Services, who: Principal, grievance_id: UUID, reveal: bool, reason: str | None,
               channel: str) -> bool:  # fmt: skip
    """Whether to show personal data whole: asked, permitted and said why, and then recorded before it is shown."""
    if not reveal:
        return False
    if not svc.chain.policy.may_reveal(who):
        raise PermissionDeniedException("reveal: seeing residents' personal data whole needs a permission you lack")
    if not reason or not reason.strip():
        raise InvalidValue("reason", "say why the resident's personal data must be seen whole; it is recorded")
    svc.disclosures.record(who, grievance_id, channel=channel, reason=reason.strip())
    return True


@get("/grievances/{grievance_id:uuid}", sync_to_thread=True, summary="A grievance now, at a version, or at a time")
def get_grievance(
    grievance_id: FromPath[UUID],
    state: State,
    principal: Reader,
    version: Annotated[int | None, QueryParameter(ge=1, le=MAX_VERSION)] = None,
    at: AsOf = None,
    clock: FromQuery[Literal["recorded", "occurred"]] = "recorded",
    reveal: Reveal = False,
    reason: Reason = None,
) -> GrievanceView:
    svc = services(state)
    current = _readable(svc, principal, grievance_id)
    whole = _revealing(svc, principal, grievance_id, reveal, reason, "http: grievance")
    if version is not None and at is not None:
        raise InvalidValue("version", "give version or at, not both")
    now = moment(svc, at)
    if version is not None:
        shown = svc.chain.grievance(grievance_id, version=version)
    elif at is not None:
        shown = svc.chain.grievance_at(grievance_id, now, clock=clock)
    else:
        shown = current
    return wire.view(shown, now, reveal=whole, roster=svc.roster)


@get("/grievances/{grievance_id:uuid}/history", sync_to_thread=True,
     summary="Every event with actor, times, version and chained hash")  # fmt: skip
def get_history(
    grievance_id: FromPath[UUID], state: State, principal: Reader, reveal: Reveal = False, reason: Reason = None
) -> History:
    svc = services(state)
    _readable(svc, principal, grievance_id)
    whole = _revealing(svc, principal, grievance_id, reveal, reason, "http: history")
    return History(grievance_id=grievance_id, events=svc.trail.history(grievance_id, reveal=whole))


@get("/grievances/{grievance_id:uuid}/verify", sync_to_thread=True, summary="Recompute the history's hash chain")
def get_verification(grievance_id: FromPath[UUID], state: State, principal: Reader) -> Verification:
    svc = services(state)
    _readable(svc, principal, grievance_id)
    broken = svc.trail.verify(grievance_id)
    if broken is None:
        return Verification(grievance_id=grievance_id, intact=True)
    return Verification(grievance_id=grievance_id, intact=False, version=broken.version, reason=broken.reason)


@get("/grievances/{grievance_id:uuid}/history.jsonl", sync_to_thread=True, media_type="application/jsonl",
     summary="The history as JSON Lines, one envelope with its hash a line")  # fmt: skip
def get_history_lines(
    grievance_id: FromPath[UUID], state: State, principal: Reader, reveal: Reveal = False, reason: Reason = None
) -> Response[bytes]:
    svc = services(state)
    _readable(svc, principal, grievance_id)
    whole = _revealing(svc, principal, grievance_id, reveal, reason, "http: history.jsonl")
    return Response(as_json_lines(svc.trail.history(grievance_id, reveal=whole)), media_type="application/jsonl")


@get("/grievances/{grievance_id:uuid}/history.html", sync_to_thread=True, media_type=MediaType.HTML,
     summary="The history as a readable HTML report with the chain's verdict")  # fmt: skip
def get_history_report(
    grievance_id: FromPath[UUID], state: State, principal: Reader, reveal: Reveal = False, reason: Reason = None
) -> Response[str]:
    svc = services(state)
    _readable(svc, principal, grievance_id)
    whole = _revealing(svc, principal, grievance_id, reveal, reason, "http: history.html")
    history = svc.trail.history(grievance_id, reveal=whole)
    inclusion = None
    if svc.transparency and svc.checkpoints_dir:
        inclusion = included_in_latest(svc.transparency, svc.checkpoints_dir, grievance_id, len(history),
                                       svc.checkpoint_verifiers)  # fmt: skip
    report = as_html(grievance_id, history, svc.trail.verify(grievance_id), svc.chain.chart, svc.clock(),
                     svc.display_zone, inclusion)  # fmt: skip
    return Response(report, media_type=MediaType.HTML)  # Litestar adds the charset to text/ types itself


@get("/grievances", sync_to_thread=True, summary="Grievances at a unit and below, filtered and paged")
def list_grievances(
    state: State,
    principal: Reader,
    unit: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    level: FromQuery[str | None] = None,
    category: FromQuery[str | None] = None,
    overdue: FromQuery[bool | None] = None,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> GrievancePage:
    svc = services(state)
    unit_id = require_reader_of(svc, principal, unit)
    return svc.dashboard.grievances(unit_id, now=svc.clock(), status=status, level=level, category=category,
                                    overdue=overdue, offset=offset, limit=limit)  # fmt: skip


@get("/audit/disclosures", sync_to_thread=True, summary="Every full reading of residents' personal data, newest first "
     "(auditors)")  # fmt: skip
def list_disclosures(
    state: State,
    principal: Reader,
    grievance_id: FromQuery[UUID | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> list[Disclosure]:
    svc = services(state)
    if not svc.chain.policy.may_read_disclosures(principal):
        raise PermissionDeniedException(f"role: a {principal.role.value} does not read the record of disclosures")
    return svc.disclosures.latest(grievance_id=grievance_id, limit=limit)
