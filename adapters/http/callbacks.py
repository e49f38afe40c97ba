"""The office's callback queue (回访) over HTTP: closures not rated within the configured days, and beside the
unit's satisfaction the share of its ratings the residents gave themselves."""

from __future__ import annotations

from typing import Annotated

from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter

from adapters.http.problems import api_get as get
from adapters.http.services import AsOf, Reader, moment, require_reader_of, services
from projections.resident_loop.queries import callback_queue
from schemas.resident_loop import CallbackQueue

Unit = Annotated[str | None, QueryParameter(description="A unit id; default: your own unit.")]
Days = Annotated[int | None, QueryParameter(ge=1, le=365, description="Days unrated; default GRIEVANCE_CALLBACK_DAYS.")]
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many closures.")]


@get("/callbacks", sync_to_thread=True, summary="Closures not rated within N days, for the office to call the "
     "residents back (回访), and who gave the unit's ratings")  # fmt: skip
def callbacks(state: State, principal: Reader, unit: Unit = None, days: Days = None, limit: Limit = 100,
              at: AsOf = None) -> CallbackQueue:  # fmt: skip
    svc = services(state)
    unit_id = require_reader_of(svc, principal, unit)
    if unit_id not in svc.chain.chart:
        raise NotFoundException(f"unit: no unit {unit_id!r} in the chart")
    if svc.resident_loop is None or svc.resident_loop_tables is None:
        raise NotFoundException("the resident's loop is not served here")
    return callback_queue(svc.resident_loop, svc.resident_loop_tables, svc.chain.chart, unit_id,
                          now=moment(svc, at), days=days or svc.callback_days, limit=limit)  # fmt: skip
