"""Errors as RFC 9457 problem details (application/problem+json), each naming the field at fault."""

from __future__ import annotations

from typing import Any

import structlog
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin

from engine.errors import GrievanceError, GrievanceNotFound
from schemas.results import Rejected

log = structlog.get_logger("grievance.http")

PROBLEM_BASE = "https://grievance-chain.example/problems/"


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
    return ProblemDetailsException(
        status_code=e.status_code, headers=e.headers, type_=PROBLEM_BASE + str(e.status_code),
        title={401: "not authenticated", 403: "forbidden", 404: "not found", 405: "method not allowed"}.get(
            e.status_code, "error"), detail=detail, extra={"field": field, "reason": detail},
    )  # fmt: skip


def _unexpected(e: Exception) -> ProblemDetailsException:
    """Anything else is the service's fault: logged with its traceback, answered without its details."""
    log.exception("request failed", error=repr(e))
    return ProblemDetailsException(
        status_code=500, type_=PROBLEM_BASE + "internal", title="internal error",
        detail="$: the service failed; the error is logged", extra={"field": "$", "reason": "internal error"},
    )  # fmt: skip


def problem_details_plugin() -> ProblemDetailsPlugin:
    """Every error the service returns, as problem details."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                GrievanceError: _grievance_error,
                ValidationException: _validation,
                HTTPException: _http,
                Exception: _unexpected,
            }
        )
    )
