"""POST commands, one or a batch: the same decoding, rules and results as the Kafka path. The token's holder
is the principal the application checks every command against, and the actor of each, whatever the body
says."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.plugins.problem_details import ProblemDetailsException

from adapters import wire
from adapters.http.problems import PROBLEM_BASE, problem_responses, rejected_problem
from adapters.http.services import Reader, Services, services
from engine.commands import Command, command_decoder
from schemas.results import Rejected, Result

# Most commands one request may carry: a phone's queue after days offline is far fewer; a batch is one
# transaction, and its time grows with its size.
MAX_BATCH = 1000


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """`schema` with each `#/$defs/` reference replaced by what it names (commands are not recursive), so that
    it stands alone inside the OpenAPI document."""
    if isinstance(schema, list):
        return [_inlined(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    found = {k: _inlined(v, defs) for k, v in schema.items() if k not in ("$ref", "discriminator")}
    if ref := schema.get("$ref"):
        found = {**_inlined(defs[ref.removeprefix("#/$defs/")], defs), **found}
    return found


def _over_http(command: dict[str, Any]) -> dict[str, Any]:
    """A command's schema as this endpoint takes it: `actor` may be left out, for the token's holder is the actor."""
    properties = dict(command["properties"])
    properties["actor"] = {**properties["actor"], "description": "Ignored: the token's holder is the actor."}
    return {**command, "properties": properties, "required": [r for r in command["required"] if r != "actor"]}


def _commands_schema() -> dict[str, Any]:
    """One command or a batch of at most MAX_BATCH, as the commands' own JSON Schema (`grievance schema`) has
    them."""
    (union,), defs = msgspec.json.schema_components([Command])
    one = {"anyOf": [_over_http(c) for c in _inlined(union, defs)["anyOf"]]}
    return {"anyOf": [one, {"type": "array", "items": one, "maxItems": MAX_BATCH}]}


@dataclass
class CommandsOperation(Operation):
    """POST /commands's operation, whose body the handler decodes itself (so that a bad command of a batch fails
    alone) and so documents here."""

    def __post_init__(self) -> None:
        # A JSON Schema given as it is: the OpenAPI document's schemas are JSON Schema 2020-12.
        schema: Schema = _COMMANDS_SCHEMA  # type: ignore[assignment]
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=schema)}, required=True,
            description="A command, or a list of them applied as one transaction in which a bad command fails alone",
        )  # fmt: skip


_COMMANDS_SCHEMA = _commands_schema()


def _decoded(item: Any, actor: str) -> Command | Rejected:
    if not isinstance(item, dict):
        return Rejected(command_id=None, grievance_id=None, code="malformed", field="$",
                        reason=f"expected a command object, got {type(item).__name__}")  # fmt: skip
    try:
        command: Command = command_decoder.convert({**item, "actor": actor})
        return command
    except wire.UNDECODABLE as e:
        return wire.malformed(e)


@post("/commands", status_code=200, summary="Apply one command or a batch", operation_class=CommandsOperation,
      responses={**problem_responses(401, 413), **problem_responses(400, 403, 422, refused_commands=True)},
      description="A JSON command (see `grievance schema`), or a JSON list applied as one transaction in which a "
      "bad command fails alone. `actor` is taken from the token. One command: 200 with its result, or a "
      "problem (400 malformed, 403 outside your jurisdiction, 422 refused by a rule). A batch: 200 with one "
      "result per command.")  # fmt: skip
async def post_commands(request: Request[Any, Any, State], principal: Reader) -> Response[Result | list[Result]]:
    body = await request.body()
    # Deciding and storing block on the store: in a worker thread, as the sync handlers are.
    return await anyio.to_thread.run_sync(_apply, services(request.app.state), principal, body)


def _apply(svc: Services, principal: Reader, data: bytes) -> Response[Result | list[Result]]:
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
