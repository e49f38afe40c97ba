"""The three rates 12345 hotlines are ranked by, from a unit's monthly counters."""

from __future__ import annotations

from collections.abc import Mapping


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate, or None when nothing was there to measure."""
    return numerator / denominator if denominator else None


def response_rate(c: Mapping[str, int]) -> float | None:
    """Claims within the claim limit ÷ (claims + waits that ran out unclaimed)."""
    return ratio(c.get("claims_on_time", 0), c.get("claims", 0) + c.get("missed", 0))


def resolution_rate(c: Mapping[str, int]) -> float | None:
    """Resolved ÷ (resolved + replied): a reply is an answer, not a fix."""
    return ratio(c.get("resolved", 0), c.get("resolved", 0) + c.get("replied", 0))


def satisfaction_rate(c: Mapping[str, int]) -> float | None:
    """(Satisfied + basically satisfied) ÷ rated."""
    return ratio(c.get("satisfied", 0) + c.get("basically_satisfied", 0), c.get("rated", 0))
