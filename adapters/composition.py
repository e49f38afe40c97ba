"""The composition root: the one place that reads settings and wires the engine to its stores."""

from __future__ import annotations

from adapters.chart_file import load_chart
from adapters.settings import Settings
from engine.limits import TimeLimits
from engine.service_chain import Clock, ServiceChain


def build_chain(settings: Settings, *, clock: Clock | None = None) -> ServiceChain:
    """A ServiceChain on the configured store, chart and limits; connects only when called."""
    chart = load_chart(settings.chart_path)
    limits = TimeLimits.from_hours(settings.limits_hours) if settings.limits_hours else TimeLimits()
    return ServiceChain(settings.store_env(), chart=chart, limits=limits, clock=clock)
