"""How long a process waits before trying again what failed: doubling from a first wait, up to a longest."""

from __future__ import annotations

LONGEST_WAIT_S = 30.0


def wait_after(failures: int, *, first: float = 1.0, longest: float = LONGEST_WAIT_S) -> float:
    """Seconds to wait after `failures` failures in a row (1 or more): first, twice that, … at most longest."""
    return min(longest, first * 2.0 ** min(max(failures, 1) - 1, 32))
