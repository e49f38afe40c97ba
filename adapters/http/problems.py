"""Errors as RFC 9457 problem details (application/problem+json), each naming the field at fault."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec
import structlog
from litestar import get
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin

from engine.errors import GrievanceError, GrievanceNotFound, InfrastructureError
from schemas.results import Rejected

log = structlog.get_logger("grievance.http")

PROBLEM_BASE = "https://grievance-chain.example/problems/"
PROBLEM_JSON = "application/problem+json"
# The code (and the type's last segment) of an HTTP-level refusal, by status, as the other problems have one.
HTTP_CODES = {401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              413: "too_large", 415: "unsupported_media_type"}  # fmt: skip
HTTP_TITLES = {401: "not authenticated", 403: "forbidden", 404: "not found", 405: "method not allowed"}


class Problem(msgspec.Struct, kw_only=True, frozen=True):
    """An error as the service sends it: RFC 9457 problem details with the field at fault, the reason and a
    stable code."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str
    reason: str


class RefusedCommand(Problem, kw_only=True, frozen=True):
    """A command refused or malformed: the problem, and the command and grievance it was about."""

    command_id: str | None
    grievance_id: str | None


_MEANINGS = {
    400: "a parameter or body is malformed (`field` names it)",
    401: "no API token, or not a valid one (Authorization: Bearer <token>)",
    403: "the token's role or jurisdiction does not cover the request",
    404: "no such resource, or none the token may see",
    409: "the store's log is not an append-only extension of its own published checkpoint (`code` says how)",
    413: "a batch of more commands than one request may carry",
    422: "refused by a rule of the chain, or the grievance's stored history is broken (`code` says which)",
    503: "the dashboard views are not being kept (their runner is dead, stuck or far behind)",
}


def problem_responses(*statuses: int, refused_commands: bool = False) -> dict[int, ResponseSpec]:
    """The OpenAPI responses of these error statuses: problem details, sent as application/problem+json."""
    body: type[Problem] = RefusedCommand if refused_commands else Problem
    return {s: ResponseSpec(data_container=body, media_type=PROBLEM_JSON, description=_MEANINGS[s],
                            generate_examples=False) for s in statuses}  # fmt: skip


# What every read of the API may answer besides its result: a bad parameter, no token, outside the token's
# jurisdiction, nothing there, a value a rule refuses.
READ_PROBLEMS = problem_responses(400, 401, 403, 404, 422)
# The API's reads, each documented with the problems it may send (the handlers' modules import it as `get`).
api_get = partial(get, responses=READ_PROBLEMS)


def rejected_problem(result: Rejected, status: int = 422) -> ProblemDetailsException:
    """A refused or malformed command as a problem: its code, field and reason."""
    return ProblemDetailsException(
        status_code=status,
        type_=PROBLEM_BASE + result.code,
        title="command refused" if result.code != "malformed" else "malformed command",
        detail=f"{result.field}: {result.reason}",
        extra={
            "code": result.code,
            "field": result.field,
            "reason": result.reason,
            "command_id": result.command_id,
            "grievance_id": str(result.grievance_id) if result.grievance_id else None,
        },
    )


def _grievance_error(e: GrievanceError) -> ProblemDetailsException:
    status = 404 if isinstance(e, GrievanceNotFound) else 422
    return ProblemDetailsException(
        status_code=status,
        type_=PROBLEM_BASE + e.code,
        title="not found" if status == 404 else "invalid request",
        detail=f"{e.field}: {e.reason}",
        extra={"code": e.code, "field": e.field, "reason": e.reason},
    )


def _validation(e: ValidationException) -> ProblemDetailsException:
    """Litestar's own parameter errors (a query parameter of the wrong type, say), with the first field."""
    extra: Any = e.extra
    first = extra[0] if isinstance(extra, list) and extra else {}
    field = str(first.get("key", "$")) if isinstance(first, dict) else "$"
    reason = str(first.get("message", e.detail)) if isinstance(first, dict) else e.detail
    return ProblemDetailsException(
        status_code=400, type_=PROBLEM_BASE + "bad_parameter", title="invalid parameter",
        detail=f"{field}: {reason}", extra={"code": "bad_parameter", "field": field, "reason": reason},
    )  # fmt: skip


def _http(e: HTTPException) -> ProblemDetailsException:
    field = "authorization" if e.status_code == 401 else ("path" if isinstance(e, NotFoundException) else "$")
    detail = e.detail
    if e.status_code == 403 and ": " in detail:
        field = detail.split(": ", 1)[0]
    code = HTTP_CODES.get(e.status_code, f"http_{e.status_code}")
    return ProblemDetailsException(
        status_code=e.status_code, headers=e.headers, type_=PROBLEM_BASE + code,
        title=HTTP_TITLES.get(e.status_code, "error"), detail=detail,
        extra={"code": code, "field": field, "reason": detail},
    )  # fmt: skip


def _unavailable(e: InfrastructureError) -> ProblemDetailsException:
    """The service cannot do this as configured (a key it cannot read, a store that kept failing): a 503, and the
    setting at fault in the log for the operator, not in the answer; the client may try again later."""
    log.error("request could not be served", error=str(e))
    reason = "the service cannot do this as configured; the error is logged"
    return ProblemDetailsException(
        status_code=503, type_=PROBLEM_BASE + "unavailable", title="service unavailable",
        detail=f"$: {reason}", extra={"code": "unavailable", "field": "$", "reason": reason},
    )  # fmt: skip


def _unexpected(e: Exception) -> ProblemDetailsException:
    """Anything else is the service's fault: logged with its traceback, answered without its details."""
    log.exception("request failed", error=repr(e))
    return ProblemDetailsException(
        status_code=500, type_=PROBLEM_BASE + "internal", title="internal error",
        detail="$: the service failed; the error is logged",
        extra={"code": "internal", "field": "$", "reason": "internal error"},
    )  # fmt: skip


def problem_details_plugin() -> ProblemDetailsPlugin:
    """Every error the service returns, as problem details."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                GrievanceError: _grievance_error,
                ValidationException: _validation,
                HTTPException: _http,
                InfrastructureError: _unavailable,
                Exception: _unexpected,
            }
        )
    )
