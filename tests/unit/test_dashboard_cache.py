"""The dashboard's answer cache: an answer is reused while the views stand still, and asked again once they
move; "now" counts to the minute."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from engine.chart import OrgChart
from projections.dashboard.cache import CachedDashboard


class Views:
    """Stands in for the view store: a position that tests move, and a mark for SQL parameters."""

    mark = "?"

    def __init__(self) -> None:
        self.at = 10

    def position(self) -> int:
        return self.at


def cached(yongji: OrgChart, asked: list[Any]) -> tuple[CachedDashboard, Views]:
    views = Views()
    dashboard = CachedDashboard(views, yongji, recheck_seconds=0.01)  # type: ignore[arg-type]

    def headline(unit_id: str | None = None, *, now: datetime) -> tuple[str | None, datetime, int]:
        asked.append((unit_id, now))
        return unit_id, now, views.at

    dashboard.headline = dashboard._remembering("headline", headline)  # type: ignore[method-assign]
    return dashboard, views


def test_an_answer_is_reused_until_the_views_move(yongji: OrgChart) -> None:
    asked: list[Any] = []
    dashboard, views = cached(yongji, asked)
    at = datetime(2026, 3, 2, 9, 15, 7, tzinfo=UTC)
    first = dashboard.headline("st-chengxi", now=at)
    assert dashboard.headline("st-chengxi", now=at.replace(second=48)) == first
    assert len(asked) == 1, "the same question within the same minute, on unmoved views"
    dashboard.headline("st-chengdong", now=at)
    assert len(asked) == 2, "another unit is another question"
    views.at = 11
    time.sleep(0.02)
    again: Any = dashboard.headline("st-chengxi", now=at)
    assert again[2] == 11
    assert len(asked) == 3


def test_now_is_taken_to_the_minute(yongji: OrgChart) -> None:
    asked: list[Any] = []
    dashboard, _ = cached(yongji, asked)
    dashboard.headline(None, now=datetime(2026, 3, 2, 9, 15, 59, 999, tzinfo=UTC))
    assert asked[0][1] == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
