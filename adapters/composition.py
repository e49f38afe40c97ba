"""The composition root: the one place that reads settings and wires the engine to its stores."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import psycopg
import structlog
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InternalError,
    OperationalError,
    ProgrammingError,
    TrackingRecorder,
)

from adapters.access import Jurisdiction, TokenBook
from adapters.audit_trail import AuditTrail
from adapters.chart_file import load_chart
from adapters.dashboard_cache import CachedDashboard
from adapters.dashboard_queries import Dashboard
from adapters.http.services import Services
from adapters.intake import Intake
from adapters.projection_runner import DashboardProjection
from adapters.resident_keys import ResidentKeys
from adapters.settings import Settings
from adapters.view_store import DashboardViewsMixin, PostgresDashboardViews, SQLiteDashboardViews
from engine.limits import TimeLimits
from engine.service_chain import Clock, ServiceChain

log = structlog.get_logger("grievance.views")


def build_chain(settings: Settings, *, clock: Clock | None = None) -> ServiceChain:
    """A ServiceChain on the configured store, chart and limits; connects only when called."""
    chart = load_chart(settings.chart_path)
    limits = TimeLimits.from_hours(settings.limits_hours) if settings.limits_hours else TimeLimits()
    chain = _creating_tables(lambda: ServiceChain(settings.store_env(), chart=chart, limits=limits, clock=clock))
    chain.protect_personal_data(_creating_tables(lambda: ResidentKeys(chain.recorder.datastore)))  # type: ignore[attr-defined]
    return chain


T = TypeVar("T")


def _creating_tables(construct: Callable[[], T], attempts: int = 5) -> T:
    """Construct something that creates its tables if missing, retrying when another process that starts
    at the same moment creates them first (the second CREATE then fails on a unique catalogue entry)."""
    for attempt in range(attempts):
        try:
            try:
                return construct()
            except (sqlite3.Error, psycopg.Error) as e:
                # A driver error the library lets through while connecting (an unopenable file, say).
                raise OperationalError(str(e)) from e
        # "already exists" in one catalogue or another, or PostgreSQL's "tuple concurrently updated"
        except (IntegrityError, ProgrammingError, InternalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def build_views(settings: Settings) -> DashboardViewsMixin:
    """The dashboard's tables in the same database as the events (created if missing)."""
    env = settings.store_env()
    factory = InfrastructureFactory.construct(env)
    on_sqlite = env["PERSISTENCE_MODULE"].endswith("SQLiteFactory")
    views_class: Any = SQLiteDashboardViews if on_sqlite else PostgresDashboardViews
    return cast(DashboardViewsMixin, _creating_tables(lambda: factory.tracking_recorder(views_class)))


def build_projection(settings: Settings, chain: ServiceChain, *, page_size: int = 2000) -> DashboardProjection:
    """The runner that keeps the dashboard views up to date with the chain's events, along the chain's chart:
    views totalled along a chart that has since moved a unit are emptied, to be projected again."""
    views = build_views(settings)
    if views.total_along(chain.chart):
        log.warning("the chart moved a unit since the views were totalled; they are projected again from zero")
    return DashboardProjection(chain, views, page_size=page_size)


def build_tracking(settings: Settings) -> TrackingRecorder:
    """The library's tracking recorder in the event store's database, for a process that records how far
    it has followed the log (the event relay)."""
    factory = InfrastructureFactory.construct(settings.store_env())
    return _creating_tables(factory.tracking_recorder)


def build_http_services(settings: Settings, *, clock: Clock | None = None) -> tuple[Services, DashboardProjection]:
    """What the HTTP service works with, and the projection that keeps its dashboard views up to date."""
    chain = build_chain(settings, clock=clock)
    projection = build_projection(settings, chain)
    services = Services(
        chain=chain,
        intake=Intake(chain),
        dashboard=(CachedDashboard if settings.dashboard_cache else Dashboard)(projection.views, chain.chart),
        trail=AuditTrail(chain),
        tokens=TokenBook.from_env(chain.chart),
        jurisdiction=Jurisdiction(chain.chart),
        clock=clock or (lambda: datetime.now(UTC)),
    )
    return services, projection
