"""The composition root: the one place that reads settings and wires the engine to its stores."""

from __future__ import annotations

from typing import Any, cast

from eventsourcing.persistence import InfrastructureFactory

from adapters.chart_file import load_chart
from adapters.projection_runner import DashboardProjection
from adapters.settings import Settings
from adapters.view_store import DashboardViewsMixin, PostgresDashboardViews, SQLiteDashboardViews
from engine.limits import TimeLimits
from engine.service_chain import Clock, ServiceChain


def build_chain(settings: Settings, *, clock: Clock | None = None) -> ServiceChain:
    """A ServiceChain on the configured store, chart and limits; connects only when called."""
    chart = load_chart(settings.chart_path)
    limits = TimeLimits.from_hours(settings.limits_hours) if settings.limits_hours else TimeLimits()
    return ServiceChain(settings.store_env(), chart=chart, limits=limits, clock=clock)


def build_views(settings: Settings) -> DashboardViewsMixin:
    """The dashboard's tables in the same database as the events (created if missing)."""
    env = settings.store_env()
    factory = InfrastructureFactory.construct(env)
    on_sqlite = env["PERSISTENCE_MODULE"].endswith("SQLiteFactory")
    views_class: Any = SQLiteDashboardViews if on_sqlite else PostgresDashboardViews
    return cast(DashboardViewsMixin, factory.tracking_recorder(views_class))


def build_projection(settings: Settings, chain: ServiceChain, *, page_size: int = 2000) -> DashboardProjection:
    """The runner that keeps the dashboard views up to date with the chain's events."""
    return DashboardProjection(chain, build_views(settings), page_size=page_size)
