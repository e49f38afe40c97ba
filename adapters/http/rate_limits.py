"""Rate limits on what anyone may ask without a token (the residents' page): a token bucket per key (a client's
address, a receipt code), in this process's memory, forgetting the least recently seen keys past a bound."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most `burst` requests at once, refilled at `per_minute`."""

    burst: int
    per_minute: float


# Pages are cheap and a resident may reload; ratings are few: a code is rated once a closure.
DEFAULT_LIMITS = {"page": Limit(burst=30, per_minute=30), "rating": Limit(burst=5, per_minute=2)}


class RateLimits:
    """Token buckets by (kind, key); `spend` answers 0 when a request may go on, else the seconds to wait."""

    def __init__(self, limits: Mapping[str, Limit] | None = None, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.limits = dict(limits or DEFAULT_LIMITS)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def spend(self, key: str, kind: str) -> int:
        """Take one request of `kind` from `key`'s bucket: 0 if it may go on, else the whole seconds to wait."""
        limit = self.limits[kind]
        now = self.clock()
        rate = limit.per_minute / 60
        with self._lock:
            tokens, then = self._buckets.pop((kind, key), (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - then) * rate)
            waiting = tokens < 1
            self._buckets[(kind, key)] = (tokens if waiting else tokens - 1, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return max(1, math.ceil((1 - tokens) / rate)) if waiting else 0
