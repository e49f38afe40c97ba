"""Rolling unit figures up the organisation chart: a street committee sees everything below it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

from engine.chart import OrgChart


def roll_up(
    chart: OrgChart, figures: Iterable[tuple[str, str, int]], wanted: Collection[str]
) -> dict[str, Counter[str]]:
    """Totals for the `wanted` units, each its own figures plus those of every unit below it.

    `figures` are (unit id, name, amount) rows; rows of units no longer in the chart are left out.
    """
    totals: dict[str, Counter[str]] = {unit_id: Counter() for unit_id in wanted}
    for unit_id, name, amount in figures:
        if unit_id not in chart:
            continue
        for ancestor in chart.lineage(unit_id):
            if ancestor in totals:
                totals[ancestor][name] += amount
    return totals


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate, or None when nothing was there to measure."""
    return numerator / denominator if denominator else None
