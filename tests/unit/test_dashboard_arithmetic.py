"""The dashboard's arithmetic: the three rates, points, and percentiles from 2 % buckets."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from projections.dashboard.changes import BUCKET_GROWTH, bucket_of, bucket_upper, percentile, points_of
from projections.dashboard.rates import resolution_rate, response_rate, satisfaction_rate


def test_rates_follow_12345_practice() -> None:
    month = {"claims": 8, "claims_on_time": 6, "missed": 2, "resolved": 9, "replied": 3, "rated": 10,
             "satisfied": 6, "basically_satisfied": 2, "dissatisfied": 2}  # fmt: skip
    assert response_rate(month) == 6 / 10  # a wait that ran out counts against the unit
    assert resolution_rate(month) == 9 / 12  # a reply is not a fix
    assert satisfaction_rate(month) == 8 / 10
    assert response_rate({}) is None  # nothing to measure is not 0 %


def test_points_reward_fixes_and_satisfied_residents() -> None:
    assert points_of({"claims": 2, "resolved": 1, "satisfied": 1}) == 2 + 10 + 5
    assert points_of({"claims": 1, "replied": 1, "dissatisfied": 1}) == 1 + 3 - 5


@given(st.floats(min_value=1.5, max_value=1e8))
def test_a_duration_falls_in_a_bucket_within_2_percent(seconds: float) -> None:
    upper = bucket_upper(bucket_of(seconds))
    assert seconds <= upper * (1 + 1e-9)
    assert upper < seconds * BUCKET_GROWTH * (1 + 1e-9)


@given(st.lists(st.floats(min_value=2, max_value=1e7), min_size=1, max_size=200), st.sampled_from([50, 90]))
def test_percentiles_from_buckets_are_within_2_percent_of_exact(samples: list[float], p: int) -> None:
    histogram: dict[int, int] = {}
    for s in samples:
        histogram[bucket_of(s)] = histogram.get(bucket_of(s), 0) + 1
    exact = sorted(samples)[max(1, math.ceil(len(samples) * p / 100)) - 1]
    estimate = percentile(histogram, p)
    assert estimate is not None
    assert exact <= estimate * (1 + 1e-9) <= exact * BUCKET_GROWTH * (1 + 1e-6)
