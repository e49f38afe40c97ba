"""The Litestar application: the API under /api/v1 (OpenAPI at /schema), the dashboard page at /, and
Open311 GeoReport v2 under /open311/v2. Built from Services; nothing connects at import time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import MediaType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from adapters.http import callbacks, commands, dashboard, grievances, open311, resident_page, roster, transparency
from adapters.http.problems import problem_details_plugin
from adapters.http.rate_limits import RateLimits
from adapters.http.services import Services, principal, services
from schemas.dashboard import ViewsHealth

STATIC = Path(__file__).parent / "static"
# The charts' library ships inside the plotly Python package: no CDN, as government intranets have none.
PLOTLY = Path(str(files("plotly") / "package_data"))


@get("/api/v1/health", sync_to_thread=True, tags=["service"], summary="Health: the store answers, and the dashboard "
     "views are kept (503 while their runner is dead, stuck or far behind; events they set aside are listed)",
     responses={503: ResponseSpec(data_container=ViewsHealth, description="the dashboard views are not being kept",
                                  generate_examples=False)})  # fmt: skip
def health(state: State) -> Response[ViewsHealth]:
    views = services(state).watch.health()
    # Anyone may ask: the count of events set aside, not which grievances they belong to (`projections status`).
    views = msgspec.structs.replace(views, latest_set_aside=[])
    return Response(views, status_code=200 if views.healthy else 503)


@get("/", sync_to_thread=False, include_in_schema=False)
def page(state: State) -> Response[bytes]:
    # The page shows its times in the display zone, with the labels the CLI and the reports use.
    # Litestar adds `; charset=utf-8` to every text/ type itself.
    zone = services(state).display_zone
    labels = escape(json.dumps(zone.labels(datetime.now(UTC).year)))
    meta = f'<meta name="display-zone" content="{escape(zone.name)}" data-labels="{labels}">\n</head>'
    html = (STATIC / "index.html").read_text(encoding="utf-8").replace("</head>", meta, 1)
    return Response(html.encode(), media_type=MediaType.HTML)


def create_app(svc: Services, *, debug: bool = False, resident_limits: RateLimits | None = None) -> Litestar:
    """The service for one set of Services; the residents' page counted against `resident_limits`."""
    api = Router(
        path="/api/v1",
        route_handlers=[
            commands.post_commands,
            grievances.get_grievance,
            grievances.get_history,
            grievances.get_verification,
            grievances.get_history_lines,
            grievances.get_history_report,
            grievances.list_grievances,
            grievances.list_disclosures,
            transparency.latest_checkpoint,
            transparency.grievance_proof,
            transparency.log_consistency,
            dashboard.headline,
            dashboard.rates,
            dashboard.counts,
            dashboard.daily,
            dashboard.funnel,
            dashboard.durations,
            dashboard.overdue,
            dashboard.points,
            dashboard.chart_unit,
            dashboard.chart_levels,
            callbacks.callbacks,
            roster.list_roster,
            roster.get_entry,
            roster.post_roster,
        ],
        dependencies={"principal": Provide(principal, sync_to_thread=False)},
        security=[{"bearer": []}],
    )
    open311_router = Router(
        path="/open311/v2",
        route_handlers=[open311.service_list, open311.request_list, open311.one_request, open311.file_request],
        tags=["open311"],
        exception_handlers=open311.EXCEPTION_HANDLERS,
    )
    assets = create_static_files_router(path="/assets", directories=[STATIC, PLOTLY], name="assets")
    state: dict[str, Any] = {"services": svc, "resident_limits": resident_limits or RateLimits()}
    return Litestar(
        # /health beside the API's router, not in it: anyone may ask, and its document asks no token.
        route_handlers=[
            api,
            health,
            open311_router,
            assets,
            page,
            resident_page.resident_page,
            resident_page.rate_from_page,
        ],
        state=State(state),
        plugins=[problem_details_plugin()],
        openapi_config=OpenAPIConfig(
            title="Grievance escalation engine (党建服务链条)",
            version="1",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", description="API token")}
            ),
        ),
        debug=debug,
    )
