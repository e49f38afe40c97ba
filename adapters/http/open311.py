"""Open311 GeoReport v2 (JSON): services, the requests list, one request, and filing a request, mapped onto
the chain so that existing civic clients can read and file grievances.

Services are the grievance categories. A request is a grievance: `address_id` is the chart unit where it
is reported (a household, building, grid or community); `status` is open (waiting or claimed) or closed
(resolved or replied). Reading needs an `api_key` and shows the reader's jurisdiction, unless public reads
are turned on (`GRIEVANCE_OPEN311_PUBLIC=on`); either way a request shows its category, status, unit and
dates, never text written by or about a resident. Each field and argument is as GeoReport v2 defines it
(wiki.open311.org/GeoReport_v2), and errors are its `[{code, description}]` bodies. Filing needs `api_key`,
a grid worker's (or admin's) token, and a unit in their jurisdiction; a repeated identical request files one grievance.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath, QueryParameter
from litestar.types import ExceptionHandlersMap

from adapters import wire
from adapters.http.services import Services, services
from engine.access import Principal
from engine.commands import Report
from engine.errors import InvalidValue
from engine.grievance import Category, Grievance, Status
from engine.times import parse_time
from schemas.dashboard import ServiceRequestItem
from schemas.results import Rejected

CATEGORIES = frozenset(c.value for c in Category)
MAX_SPAN = timedelta(days=90)
MAX_IDS = 100
# GeoReport v2, "Format Support": "JSON: Content-Type: application/json; charset=utf-8".
JSON_UTF8 = "application/json; charset=utf-8"
SPEC = "GeoReport v2 (wiki.open311.org/GeoReport_v2)"


class Open311Error(Exception):
    """An error as GeoReport v2's "Errors" section has it: an HTTP status (403 for a wrong or missing api_key,
    404 for what does not exist, 400 for the rest) and a body of `[{code, description}]`."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


class ErrorEntry(msgspec.Struct, kw_only=True, frozen=True):
    """One error of an Open311 error body: `code` (the HTTP status here) and a `description` naming the field."""

    code: int
    description: str


class Service(msgspec.Struct, kw_only=True, frozen=True):
    """A service of GET Service List: a grievance category."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class ServiceRequest(msgspec.Struct, kw_only=True, frozen=True):
    """A request of GET Service Requests and GET Service Request: a grievance, with none of a resident's words
    or personal data (`description` and `media_url` are never given; `address` is the chart unit's name)."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: None
    agency_responsible: str
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str
    address_id: str
    zipcode: None
    lat: None
    long: None
    media_url: None


class FiledRequest(msgspec.Struct, kw_only=True, frozen=True):
    """The answer of POST Service Request: the new request's id (realtime: no token)."""

    service_request_id: str
    service_notice: str | None
    account_id: None


def _errors(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=list[ErrorEntry], media_type=JSON_UTF8, description=description,
                        generate_examples=False)  # fmt: skip


BAD_ARGUMENT = {400: _errors("an argument is not as the spec says (the description starts with its name)")}
ERRORS = {**BAD_ARGUMENT, 403: _errors("the api_key is missing or not valid")}
NOT_FOUND = {404: _errors("no such request")}


def error_response(_: Request[Any, Any, Any], exc: Open311Error) -> Response[list[ErrorEntry]]:
    """An Open311Error as the spec's error body."""
    return Response([ErrorEntry(code=exc.status, description=exc.description)], status_code=exc.status,
                    media_type=JSON_UTF8)  # fmt: skip


def invalid_response(request: Request[Any, Any, Any], exc: ValidationException) -> Response[list[ErrorEntry]]:
    """Litestar's own refusal of a body or argument, in the spec's error body like every other."""
    return error_response(request, Open311Error(400, f"$: {exc.detail}"))


# The router's: every error under /open311/v2 in the spec's body.
EXCEPTION_HANDLERS: ExceptionHandlersMap = {Open311Error: error_response, ValidationException: invalid_response}


def w3(moment: datetime) -> str:
    """A time in the W3C note's form with Z for UTC, as the spec's examples write it (2010-01-01T00:00:00Z)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _as_request(svc: Services, found: ServiceRequestItem) -> ServiceRequest:
    """A grievance field by field as GeoReport v2's "GET Service Requests" response defines each one."""
    item, chart = found.item, svc.chain.chart
    status = Status(item.status)
    # agency_responsible: "The agency responsible for fulfilling or otherwise addressing" it: the unit it
    # waits at now (an escalation moves it up), or the one that settled it.
    agency = chart.unit(item.unit_id).name
    escalated = f", escalated {found.escalations} time{'s' * (found.escalations != 1)}" if found.escalations else ""
    notes = {Status.WAITING: f"waiting to be claimed at {agency}{escalated}", Status.CLAIMED:
             f"claimed at {agency}{escalated}", Status.RESOLVED: f"resolved at {agency}{escalated}",
             Status.REPLIED: f"answered at {agency} (replied){escalated}"}[status]  # fmt: skip
    due = w3(item.due_at) if item.due_at is not None else None
    # service_notice: "the action expected to fulfill the request"; expected_datetime: "when [it] can be
    # expected to be fulfilled", which only a claim's deadline says (a waiting one's deadline is to be claimed).
    notice = {Status.WAITING: f"to be claimed at {agency} by {due}", Status.CLAIMED:
              f"to be settled at {agency} by {due}"}.get(status) if due else None  # fmt: skip
    # updated_datetime: "last modified. For requests with status=closed, this will be the date the request
    # was closed".
    updated = item.closed_at if not status.is_open and item.closed_at is not None else found.updated_at
    # address / address_id: where it was reported (the problem's place), however far it has been escalated:
    # the chart unit, whose name reads as its place (the street's community, grid and building).
    return ServiceRequest(
        service_request_id=str(item.grievance_id), status="open" if status.is_open else "closed",
        status_notes=notes, service_name=Category(item.category).label, service_code=item.category,
        # Never text written by or about a resident: the category says what it is about.
        description=None, agency_responsible=agency, service_notice=notice,
        requested_datetime=w3(item.reported_at), updated_datetime=w3(updated),
        expected_datetime=due if status is Status.CLAIMED else None, address=chart.unit(found.reported_unit).name,
        address_id=found.reported_unit, zipcode=None, lat=None, long=None, media_url=None,
    )  # fmt: skip


Jurisdiction = Annotated[str | None, QueryParameter(description=(
    "Ignored: this endpoint serves one jurisdiction, which GeoReport v2 (Definitions: jurisdiction_id) lets an "
    "implementation treat as an optional argument"))]  # fmt: skip
ApiKey = Annotated[str | None, QueryParameter(
    description="An API token; needed unless public reads are on (GRIEVANCE_OPEN311_PUBLIC)")]  # fmt: skip
Ids = Annotated[str | None, QueryParameter(description="Comma-delimited ids; overrides all other arguments")]
W3CTime = Annotated[str | None, QueryParameter(
    description="W3C datetime with a UTC offset, eg 2010-01-01T00:00:00Z; the window of requested_datetime spans "
    "at most 90 days", schema_extra={"format": "date-time"})]  # fmt: skip


@get("/services.json", sync_to_thread=False, media_type=JSON_UTF8, responses=BAD_ARGUMENT,
     summary="Open311 GET Service List: the grievance categories")  # fmt: skip
def service_list(jurisdiction_id: Jurisdiction = None) -> list[Service]:
    return [Service(service_code=c.value, service_name=c.label, description=c.label, metadata=False,
                    type="realtime", keywords=c.value, group="grievances") for c in Category]  # fmt: skip


def _when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(name, value)  # as every channel reads a time: W3C's and RFC 3339's forms agree here
    except InvalidValue as e:
        raise ValueError(str(e)) from None


def _window(start_date: str | None, end_date: str | None, now: datetime) -> tuple[datetime, datetime]:
    """GET Service Requests' start_date and end_date: "When not specified, the range defaults to most recent 90
    days"; given one, the range is the 90 days from it (start_date) or up to it (end_date); given both, it
    "may not span more than 90 days"."""
    try:
        start, end = _when(start_date, "start_date"), _when(end_date, "end_date")
    except ValueError as e:
        raise Open311Error(400, str(e)) from None
    if start is None:
        end = end or now
        return end - MAX_SPAN, end
    if end is None:
        return start, start + MAX_SPAN
    if end < start:
        raise Open311Error(400, "end_date: comes before start_date")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date: the range from start_date to end_date may not span more than 90 days")
    return start, end


def _listed(value: str | None) -> list[str]:
    """A comma-delimited argument's values; empty ones are as if not given ("Optional Arguments")."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@get("/requests.json", sync_to_thread=True, media_type=JSON_UTF8, responses=ERRORS,
     summary="Open311 GET Service Requests: newest first, at most 1000",
     description=f"As {SPEC}: `service_request_id` (comma-delimited) overrides every other argument; else "
     "`service_code` and `status` (open, closed) are comma-delimited, and requested_datetime lies in the 90 "
     "days from start_date, up to end_date, between the two, or up to now.")  # fmt: skip
def request_list(
    state: State,
    api_key: ApiKey = None,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: Ids = None,
    service_code: Annotated[str | None, QueryParameter(description="Comma-delimited service codes")] = None,
    start_date: W3CTime = None,
    end_date: W3CTime = None,
    status: Annotated[str | None, QueryParameter(description="Comma-delimited: open, closed")] = None,
) -> list[ServiceRequest]:
    svc = services(state)
    reader = _reader(svc, api_key)
    now = svc.clock()
    if ids_given := _listed(service_request_id):
        # "service_request_id ... This overrides all other arguments."
        try:
            ids = [UUID(i) for i in ids_given]
        except ValueError:
            raise Open311Error(400, "service_request_id: each id is a UUID, comma-delimited") from None
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"service_request_id: at most {MAX_IDS} ids at once")
        found = svc.dashboard.service_requests(now=now, ids=ids, start=now, end=now)
    else:
        start, end = _window(start_date, end_date, now)
        codes = _listed(service_code)
        if unknown := [c for c in codes if c not in CATEGORIES]:
            raise Open311Error(400, f"service_code: {unknown[0]!r} is not a service")
        wanted = _listed(status)
        if unknown := [s for s in wanted if s not in ("open", "closed")]:
            raise Open311Error(400, f"status: {unknown[0]!r} is not open or closed")
        statuses = [s.value for w in dict.fromkeys(wanted)
                    for s in (Status.open_ones() if w == "open" else Status.closed_ones())]  # fmt: skip
        found = svc.dashboard.service_requests(now=now, categories=codes, statuses=statuses, start=start, end=end)
    return [_as_request(svc, f) for f in found if _may_see(svc, reader, f)]


def _reader(svc: Services, api_key: str | None) -> Principal | None:
    """Who reads: nobody in particular when public reads are on; else the holder of a valid `api_key`, or a 403."""
    if svc.open311_public:
        return None
    who = svc.tokens.authenticate(api_key) if api_key else None
    if who is None:
        raise Open311Error(403, "api_key: public reads are off here; send a valid API key")
    return who


def _may_see(svc: Services, reader: Principal | None, found: ServiceRequestItem) -> bool:
    """As the API's reads: a request that passed through the reader's subtree, which an escalation only climbs
    from where it was reported, so where it was reported or where it is now."""
    return reader is None or svc.chain.policy.covers_any(reader, [found.reported_unit, found.item.unit_id])


@get("/requests/{request_id:str}", sync_to_thread=True, media_type=JSON_UTF8, responses={**ERRORS, **NOT_FOUND},
     summary="Open311 GET Service Request: one request (…/requests/ID.json)")  # fmt: skip
def one_request(
    request_id: FromPath[str], state: State, api_key: ApiKey = None, jurisdiction_id: Jurisdiction = None
) -> list[ServiceRequest]:
    svc = services(state)
    reader = _reader(svc, api_key)
    try:
        gid = UUID(request_id.removesuffix(".json"))
    except ValueError:
        raise Open311Error(404, f"service_request_id: {request_id!r} is not a request") from None
    now = svc.clock()
    found = [f for f in svc.dashboard.service_requests(now=now, ids=[gid], start=now, end=now)
             if _may_see(svc, reader, f)]  # fmt: skip
    if not found:
        raise Open311Error(404, f"service_request_id: no request {gid}")
    return [_as_request(svc, found[0])]


@post(
    "/requests.json",
    sync_to_thread=True,
    status_code=201,
    media_type=JSON_UTF8,
    responses={
        **ERRORS,
        404: _errors("service_code was not found"),
    },
    summary="Open311 POST Service Request: file a grievance (a grid worker's api_key; address_id: the unit)",
)
def file_request(
    state: State, data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> list[FiledRequest]:
    svc = services(state)
    token = str(data.get("api_key") or "")
    who: Principal | None = svc.tokens.authenticate(token) if token else None
    if who is None:
        raise Open311Error(403, "api_key: a valid API key is required to file a request")
    # POST Service Request's errors: "400 - service_code ... was not provided", "404 - service_code ... was
    # not found".
    code = str(data.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code: required; GET services.json lists them")
    if code not in CATEGORIES:
        raise Open311Error(404, f"service_code: {code!r} is not a service; GET services.json lists them")
    unit_id = str(data.get("address_id") or "")
    if not unit_id:
        raise Open311Error(400, "address_id: the unit (household, building, grid or community) where it is "
                                "reported; lat/long and address_string are not taken here")  # fmt: skip
    description = str(data.get("description") or "").strip()
    # The same request filed twice (a phone retrying) is the same command, hence one grievance.
    fingerprint = hashlib.sha256(msgspec.json.encode(sorted(data.items()))).hexdigest()[:24]
    command_id = f"open311:{fingerprint}"
    fields: dict[str, Any] = {
        "kind": "report", "command_id": command_id, "grievance_id": str(Grievance.create_id(command_id)),
        "actor": who.name, "occurred_at": svc.clock().isoformat(), "unit_id": unit_id,
        "category": code, "title": description[:60] or "(no description)",
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
        raise Open311Error(400, f"{field}: {refused.reason}") from None
    result = svc.intake.submit_one(command, principal=who)
    if isinstance(result, Rejected):
        field = {"category": "service_code", "unit_id": "address_id", "role": "api_key"}.get(result.field,
                                                                                          result.field)  # fmt: skip
        raise Open311Error(403 if result.code == "forbidden" else 400, f"{field}: {result.reason}")
    # The resident's receipt as the notice: the code that opens their own page, /r/{code}.
    notice = f"回执 receipt {result.receipt}: /r/{result.receipt}" if result.receipt else None
    return [FiledRequest(service_request_id=str(result.grievance_id), service_notice=notice, account_id=None)]
