"""Open311 GeoReport v2 (JSON): services, the requests list, one request, and filing a request, mapped onto
the chain so that existing civic clients can read and file grievances.

Services are the grievance categories. A request is a grievance: `address_id` is the chart unit where it
is reported (a household, building, grid or community); `status` is open (waiting or claimed) or closed
(resolved or replied). Reading needs an `api_key` and shows the reader's jurisdiction, unless public reads
are turned on (`GRIEVANCE_OPEN311_PUBLIC=on`); either way a request shows its category, status, unit and
dates, never text written by or about a resident. Filing needs `api_key`, a grid worker's (or admin's) token,
and a unit in their jurisdiction; a repeated identical request files one grievance.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery

from adapters import wire
from adapters.http.services import Services, services
from engine.access import Principal
from engine.commands import Report
from engine.errors import InvalidValue
from engine.grievance import Category, Grievance, Status
from engine.times import parse_time
from schemas.dashboard import GrievanceItem
from schemas.results import Rejected

CATEGORIES = frozenset(c.value for c in Category)
MAX_SPAN = timedelta(days=90)
MAX_IDS = 100


def _error(status: int, description: str) -> Response[Any]:
    return Response([{"code": status, "description": description}], status_code=status)


def _as_request(svc: Services, item: GrievanceItem) -> dict[str, Any]:
    chart = svc.chain.chart
    updated = max(t for t in (item.reported_at, item.claimed_at, item.closed_at) if t is not None)
    closed = not Status(item.status).is_open
    return {
        "service_request_id": str(item.grievance_id),
        "status": "closed" if closed else "open",
        "status_notes": item.status if closed else f"{item.status} at {chart.unit(item.unit_id).name}",
        "service_name": Category(item.category).label,
        "service_code": item.category,
        # Never text written by or about a resident: the category says what it is about.
        "description": None,
        "agency_responsible": chart.unit(item.unit_id).name,
        "service_notice": None,
        "requested_datetime": item.reported_at.isoformat(),
        "updated_datetime": updated.isoformat(),
        "expected_datetime": item.due_at.isoformat() if item.due_at and not closed else None,
        "address": None,
        "address_id": item.unit_id,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


@get("/services.json", sync_to_thread=False, summary="Open311: the service list (grievance categories)")
def service_list() -> list[dict[str, Any]]:
    return [
        {"service_code": c.value, "service_name": c.label, "description": c.label,
         "metadata": False, "type": "realtime", "keywords": c.value, "group": "grievances"}
        for c in Category
    ]  # fmt: skip


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(name, value)  # as every channel reads a time: W3C's and RFC 3339's forms agree here
    except InvalidValue as e:
        raise ValueError(str(e)) from None


@get("/requests.json", sync_to_thread=True, summary="Open311: service requests, newest first")
def request_list(
    state: State,
    api_key: FromQuery[str | None] = None,
    service_request_id: FromQuery[str | None] = None,
    service_code: FromQuery[str | None] = None,
    start_date: FromQuery[str | None] = None,
    end_date: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> Response[Any]:
    svc = services(state)
    reader = _reader(svc, api_key)
    if isinstance(reader, Response):
        return reader
    now = svc.clock()
    try:
        ids = [UUID(i.strip()) for i in service_request_id.split(",") if i.strip()] if service_request_id else []
        end = _when(end_date, "end_date") or now
        start = _when(start_date, "start_date") or end - MAX_SPAN
    except ValueError as e:
        return _error(400, str(e))
    if len(ids) > MAX_IDS:
        return _error(400, f"service_request_id: at most {MAX_IDS} ids at once")
    if end - start > MAX_SPAN:
        return _error(400, "start_date: the span may not exceed 90 days")
    codes = [c.strip() for c in service_code.split(",")] if service_code else []
    if unknown := [c for c in codes if c not in CATEGORIES]:
        return _error(400, f"service_code: {unknown[0]!r} is not a service")
    statuses: list[str] = []
    for s in status.split(",") if status else []:
        if s.strip() not in ("open", "closed"):
            return _error(400, f"status: {s.strip()!r} is not open or closed")
        statuses += [st.value for st in (Status.open_ones() if s.strip() == "open" else Status.closed_ones())]
    items = svc.dashboard.service_requests(now=now, ids=ids, categories=codes, statuses=statuses, start=start,
                                           end=end)  # fmt: skip
    return Response([_as_request(svc, i) for i in items if _may_see(svc, reader, i)])


def _reader(svc: Services, api_key: str | None) -> Principal | Response[Any] | None:
    """Who reads: nobody in particular when public reads are on; else the holder of a valid `api_key`, or a 403."""
    if svc.open311_public:
        return None
    who = svc.tokens.authenticate(api_key) if api_key else None
    if who is None:
        return _error(403, "api_key: public reads are off here; send a valid API key")
    return who


def _may_see(svc: Services, reader: Principal | None, item: GrievanceItem) -> bool:
    return reader is None or svc.chain.policy.covers(reader, item.unit_id)


@get("/requests/{request_id:str}", sync_to_thread=True, summary="Open311: one service request (…/requests/ID.json)")
def one_request(request_id: FromPath[str], state: State, api_key: FromQuery[str | None] = None) -> Response[Any]:
    svc = services(state)
    reader = _reader(svc, api_key)
    if isinstance(reader, Response):
        return reader
    try:
        gid = UUID(request_id.removesuffix(".json"))
    except ValueError:
        return _error(404, f"service_request_id: {request_id!r} is not a request")
    items = [i for i in svc.dashboard.service_requests(now=svc.clock(), ids=[gid], start=svc.clock(),
                                                      end=svc.clock()) if _may_see(svc, reader, i)]  # fmt: skip
    if not items:
        return _error(404, f"service_request_id: no request {gid}")
    return Response([_as_request(svc, items[0])])


@post("/requests.json", sync_to_thread=True, status_code=201, summary="Open311: file a service request")
def file_request(
    state: State, data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> Response[Any]:
    svc = services(state)
    token = str(data.get("api_key") or "")
    who: Principal | None = svc.tokens.authenticate(token) if token else None
    if who is None:
        return _error(403, "api_key: a valid API key is required to file a request")
    unit_id = str(data.get("address_id") or "")
    if not unit_id:
        return _error(400, "address_id: the unit (household, building, grid or community) where it is reported")
    description = str(data.get("description") or "").strip()
    # The same request filed twice (a phone retrying) is the same command, hence one grievance.
    fingerprint = hashlib.sha256(msgspec.json.encode(sorted(data.items()))).hexdigest()[:24]
    command_id = f"open311:{fingerprint}"
    fields: dict[str, Any] = {
        "kind": "report", "command_id": command_id, "grievance_id": str(Grievance.create_id(command_id)),
        "actor": who.name, "occurred_at": svc.clock().isoformat(), "unit_id": unit_id,
        "category": str(data.get("service_code") or ""), "title": description[:60] or "(no description)",
        "description": description, "channel": "app",
    }  # fmt: skip
    name = " ".join(str(data.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    phone = str(data.get("phone") or "").strip()
    if name or phone:
        # The resident's own name and phone are personal data: stored sealed under the resident's key.
        account = str(data.get("account_id") or "").strip()
        fields["resident"] = {"resident_id": f"open311:{account or fingerprint}", "name": name, "phone": phone}
    try:
        command = msgspec.convert(fields, Report, strict=False)
    except msgspec.ValidationError as e:
        refused = wire.malformed(e)
        field = {"category": "service_code", "unit_id": "address_id", "resident.phone": "phone",
                 "resident.name": "first_name"}.get(refused.field, refused.field)  # fmt: skip
        return _error(400, f"{field}: {refused.reason}")
    result = svc.intake.submit_one(command, principal=who)
    if isinstance(result, Rejected):
        field = {"category": "service_code", "unit_id": "address_id", "role": "api_key"}.get(result.field,
                                                                                          result.field)  # fmt: skip
        return _error(403 if result.code == "forbidden" else 400, f"{field}: {result.reason}")
    return Response([{"service_request_id": str(result.grievance_id), "service_notice": None, "account_id": None}],
                    status_code=201)  # fmt: skip
