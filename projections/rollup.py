"""Rolling unit figures up the organisation chart: a street committee sees everything below it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from engine.chart import OrgChart


def roll_up(chart: OrgChart, per_unit: Mapping[str, Mapping[str, int]]) -> dict[str, Counter[str]]:
    """Every unit's own figures plus those of all units below it; units without figures get zeros."""
    totals: dict[str, Counter[str]] = {unit.id: Counter() for unit in chart}
    for unit_id, figures in per_unit.items():
        if unit_id in totals:
            totals[unit_id].update(figures)
    # Parents come before children in walk(); reversed, every child is added before its parent is read.
    for unit in reversed(list(chart.walk())):
        if unit.parent is not None:
            totals[unit.parent].update(totals[unit.id])
    return totals


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate, or None when nothing was there to measure."""
    return numerator / denominator if denominator else None
