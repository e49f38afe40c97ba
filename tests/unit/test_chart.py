"""The organisation chart: the shipped Yongji chart, and every way a chart file can be wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.demo.charts import yongji as yongji_source
from adapters.settings import SHIPPED_CHART
from adapters.storage.chart_file import load_chart
from engine.chart import OrgChart
from engine.errors import ChartError, ConfigurationError
from engine.levels import Level


def test_levels_are_the_seven_links_lowest_first() -> None:
    assert [level.rank for level in Level] == list(range(1, 8))
    assert Level.GRID_BRANCH.above is Level.COMMUNITY
    assert Level.LEADING_GROUP.above is None
    assert Level.MEMBER_HOUSEHOLD.chinese == "党员示范户"


def test_the_shipped_yongji_chart_is_sized_from_the_articles(yongji: OrgChart) -> None:
    counts = yongji.count_by_level()
    assert counts[Level.LEADING_GROUP] == 1
    assert counts[Level.STREET_COMMITTEE] == 3
    assert counts[Level.COMMUNITY] == counts[Level.JOINT_COMMITTEE] == 22
    # communities, grid branches and building groups: Yongji's 485 urban grassroots organisations
    assert counts[Level.COMMUNITY] + counts[Level.GRID_BRANCH] + counts[Level.BUILDING_GROUP] == 485
    assert [u.id for u in yongji.path_to_root("mh-chengbei-07-4-4-3")][-3:] == ["jc-chengbei-07", "st-chengbei", "lg"]


def test_the_shipped_file_is_what_its_generator_writes() -> None:
    assert SHIPPED_CHART.read_text(encoding="utf-8") == yongji_source.render()


def unit(uid: str, level: str, parent: str | None, name: str = "n") -> dict[str, Any]:
    return {"id": uid, "name": name, "level": level, "parent": parent}


GOOD = [unit("lg", "leading_group", None), unit("st", "street_committee", "lg")]


@pytest.mark.parametrize(
    ("records", "names", "words"),
    [
        ([*GOOD, unit("st", "street_committee", "lg")], "st", "more than once"),
        ([*GOOD, unit("jc", "joint_committee", "nowhere")], "jc", "not in the chart"),
        ([*GOOD, unit("cm", "community", "st")], "cm", "exactly one level up"),
        ([*GOOD, unit("lg2", "leading_group", None)], "lg", "exactly one leading-group root"),
        ([unit("st", "street_committee", None)], "st", "no parent"),
        ([*GOOD, unit("a", "joint_committee", "b"), unit("b", "joint_committee", "a")], "a", "level up"),
        ([*GOOD, unit("x", "joint_committee", "x")], "x", "own parent"),
        ([*GOOD, unit("Bad Id", "joint_committee", "st")], "Bad Id", "id must be"),
        ([*GOOD, unit("jc", "committee", "st")], "jc", "not one of"),
        ([*GOOD, unit("jc", "joint_committee", "st", name="")], "jc", "name"),
    ],
)
def test_invalid_charts_are_rejected_naming_the_unit(records: list[dict[str, Any]], names: str, words: str) -> None:
    with pytest.raises(ChartError, match=words) as refused:
        OrgChart.from_records(records)
    assert refused.value.unit_id == names


def test_chart_files_load_from_toml_and_fail_clearly(tmp_path: Path) -> None:
    toml = tmp_path / "chart.toml"
    toml.write_text('[[units]]\nid = "lg"\nname = "领导小组"\nlevel = "leading_group"\n', encoding="utf-8")
    assert load_chart(toml).root.name == "领导小组"
    broken = tmp_path / "chart.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"chart\.json: not valid JSON"):
        load_chart(broken)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_chart(tmp_path / "missing.json")
