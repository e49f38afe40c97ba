"""POST commands, one or a batch: the same decoding, rules and results as the Kafka path. The token's holder
is the principal the application checks every command against, and the actor of each, whatever the body
says."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.plugins.problem_details import ProblemDetailsException

from adapters import wire
from adapters.http.problems import PROBLEM_BASE, rejected_problem
from adapters.http.services import Reader, Services, services
from engine.commands import Command, command_decoder
from schemas.results import Rejected, Result

# Most commands one request may carry: a phone's queue after days offline is far fewer; a batch is one
# transaction, and its time grows with its size.
MAX_BATCH = 1000


def _decoded(item: Any, actor: str) -> Command | Rejected:
    if not isinstance(item, dict):
        return Rejected(command_id=None, grievance_id=None, code="malformed", field="$",
                        reason=f"expected a command object, got {type(item).__name__}")  # fmt: skip
    try:
        command: Command = command_decoder.convert({**item, "actor": actor})
        return command
    except wire.UNDECODABLE as e:
        return wire.malformed(e)


@post("/commands", status_code=200, summary="Apply one command or a batch",
      description="A JSON command (see `grievance schema`), or a JSON list applied as one transaction in which a "
      "bad command fails alone. `actor` is taken from the token. One command: 200 with its result, or a "
      "problem (400 malformed, 403 outside your jurisdiction, 422 refused by a rule). A batch: 200 with one "
      "result per command.")  # fmt: skip
async def post_commands(request: Request[Any, Any, State], principal: Reader) -> Response[Any]:
    body = await request.body()
    # Deciding and storing block on the store: in a worker thread, as the sync handlers are.
    return await anyio.to_thread.run_sync(_apply, services(request.app.state), principal, body)


def _apply(svc: Services, principal: Reader, data: bytes) -> Response[Any]:
    try:
        parsed = msgspec.json.decode(data)
    except wire.UNDECODABLE as e:
        raise rejected_problem(wire.malformed(e), 400) from None
    single = not isinstance(parsed, list)
    items = [parsed] if single else parsed
    if len(items) > MAX_BATCH:
        raise ProblemDetailsException(
            status_code=413, type_=PROBLEM_BASE + "batch_too_large", title="batch too large",
            detail=f"$: a batch holds at most {MAX_BATCH:,} commands; this one holds {len(items):,}",
            extra={"code": "batch_too_large", "field": "$", "reason": f"at most {MAX_BATCH:,} commands a batch"},
        )  # fmt: skip
    decided = [_decoded(item, principal.name) for item in items]
    commands = [c for c in decided if not isinstance(c, Rejected)]
    applied = iter(svc.intake.submit(commands, principal=principal) if commands else [])
    results: list[Result] = [c if isinstance(c, Rejected) else next(applied) for c in decided]
    if single:
        (result,) = results
        if isinstance(result, Rejected):
            raise rejected_problem(result, {"malformed": 400, "forbidden": 403}.get(result.code, 422))
        return Response(result)
    return Response(results)
