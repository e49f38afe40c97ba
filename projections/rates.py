"""Rates as the dashboards show them."""

from __future__ import annotations


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate, or None when nothing was there to measure."""
    return numerator / denominator if denominator else None
