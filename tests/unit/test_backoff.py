"""Waiting before trying again what failed: doubling, bounded."""

from __future__ import annotations

from adapters.backoff import LONGEST_WAIT_S, wait_after


def test_the_wait_doubles_from_the_first_and_stops_at_the_longest() -> None:
    assert [wait_after(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, LONGEST_WAIT_S, LONGEST_WAIT_S]
    assert wait_after(10_000) == LONGEST_WAIT_S, "a long outage neither overflows nor waits longer"
    assert wait_after(3, first=0.01, longest=1.0) == 0.04
