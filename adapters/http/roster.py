"""The roster over HTTP, under /api/v1/roster: who is on it (unit by unit, now or as it stood at a time), one entry,
and roster commands (join, move, leave, represent; one or a batch), each as the token's holder under the access
policy."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException

from adapters import wire
from adapters.http.problems import PROBLEM_BASE, problem_responses
from adapters.http.problems import api_get as get
from adapters.http.services import AsOf, Reader, Services, moment, require_reader_of, services
from adapters.roster_views import entry_view, result_of
from engine.access import Principal
from engine.errors import RosterEntryNotFound
from engine.roster_book import RosterBook
from engine.roster_commands import RosterCommand, roster_command_decoder
from schemas.roster import RollView, RosterEntryView, RosterRejected, RosterResult

MAX_BATCH = 1000


def _book(svc: Services) -> RosterBook:
    if svc.roster is None:
        raise RosterEntryNotFound("roster", "this service keeps no roster")
    return svc.roster


@get("/roster", sync_to_thread=True, tags=["roster"], summary="Who is on the roster of a unit (and the units below "
     "it), now or as it stood at a time: who could claim there then; people's names masked")  # fmt: skip
def list_roster(
    state: State,
    principal: Reader,
    unit: Annotated[str | None, QueryParameter(max_length=64, description="The unit (default: your own).")] = None,
    below: Annotated[bool, QueryParameter(description="The units below it too.")] = False,
    at: AsOf = None,
) -> list[RollView]:
    svc = services(state)
    unit = require_reader_of(svc, principal, unit)
    chart, book = svc.chain.chart, _book(svc)
    when = moment(svc, at) if at is not None else None
    units = [u.id for u in chart.walk(unit)] if below else [chart.unit(unit).id]
    rolls = book.rolls(units)
    standing = {u: rolls[u].on_roll(when) for u in units if u in rolls}
    entries = {e.entry_id: e for e in book.entries(eid for on in standing.values() for eid in on)}
    views = [RollView(unit_id=u, at=when, keeps_roster=True,
                      entries=[entry_view(entries[e]) for e in sorted(on) if e in entries])
             for u, on in standing.items()]  # fmt: skip
    return views or [RollView(unit_id=unit, at=when, keeps_roster=False, entries=[])]


@get("/roster/{entry_id:str}", sync_to_thread=True, tags=["roster"], summary="One roster entry, a person's name "
     "masked")  # fmt: skip
def get_entry(entry_id: FromPath[str], state: State, principal: Reader) -> RosterEntryView:
    svc = services(state)
    entry = _book(svc).entry(entry_id)
    if not svc.chain.policy.covers(principal, entry.unit_id):
        # As an unknown id is: who is on the roster outside one's jurisdiction is not one's to learn.
        raise RosterEntryNotFound("entry_id", f"nobody and nothing is on the roster as {entry_id!r}")
    return entry_view(entry)


@post("/roster", status_code=200, tags=["roster"],
      summary="Apply one roster command or a batch (join, move, leave, represent)",
      responses={**problem_responses(401, 413), **problem_responses(400, 403, 422)},
      description="A JSON roster command tagged by `verb` (join, move, leave, represent), or a list of them applied "
      "as one transaction in which a bad command fails alone. `actor` is taken from the token. One command: 200 "
      "with its result, or a problem (400 malformed, 403 outside your jurisdiction, 422 refused by a rule). A "
      "batch: 200 with one result per command.")  # fmt: skip
async def post_roster(request: Request[Any, Any, State], principal: Reader) -> Response[Any]:
    body = await request.body()
    return await anyio.to_thread.run_sync(_apply, services(request.app.state), principal, body)


def _decoded(item: Any, actor: str) -> RosterCommand | RosterRejected:
    if not isinstance(item, dict):
        return RosterRejected(command_id=None, entry_id=None, code="malformed", field="$",
                              reason=f"expected a roster command object, got {type(item).__name__}")  # fmt: skip
    try:
        return roster_command_decoder.convert({**item, "actor": actor})
    except wire.UNDECODABLE as e:
        bad = wire.malformed(e)
        return RosterRejected(command_id=None, entry_id=None, code=bad.code, field=bad.field, reason=bad.reason)


def _problem(result: RosterRejected) -> ProblemDetailsException:
    status = {"malformed": 400, "forbidden": 403, "not_found": 404}.get(result.code, 422)
    return ProblemDetailsException(
        status_code=status, type_=PROBLEM_BASE + result.code,
        title="malformed command" if result.code == "malformed" else "command refused",
        detail=f"{result.field}: {result.reason}",
        extra={"code": result.code, "field": result.field, "reason": result.reason, "command_id": result.command_id,
               "entry_id": result.entry_id},
    )  # fmt: skip


def _apply(svc: Services, principal: Principal, data: bytes) -> Response[Any]:
    try:
        parsed = msgspec.json.decode(data)
    except wire.UNDECODABLE as e:
        bad = wire.malformed(e)
        raise _problem(RosterRejected(command_id=None, entry_id=None, code=bad.code, field=bad.field,
                                      reason=bad.reason)) from None  # fmt: skip
    single = not isinstance(parsed, list)
    items = [parsed] if single else parsed
    if len(items) > MAX_BATCH:
        raise ProblemDetailsException(
            status_code=413, type_=PROBLEM_BASE + "batch_too_large", title="batch too large",
            detail=f"$: a batch holds at most {MAX_BATCH:,} roster commands; this one holds {len(items):,}",
            extra={"code": "batch_too_large", "field": "$", "reason": f"at most {MAX_BATCH:,} commands a batch"},
        )  # fmt: skip
    decided = [_decoded(item, principal.name) for item in items]
    commands = [c for c in decided if not isinstance(c, RosterRejected)]
    applied = iter(_book(svc).execute(commands, principal=principal) if commands else [])
    results: list[RosterResult] = [c if isinstance(c, RosterRejected) else result_of(c, next(applied)) for c in decided]
    if single:
        (result,) = results
        if isinstance(result, RosterRejected):
            raise _problem(result)
        return Response(result)
    return Response(results)
