"""Builds the shipped Yongji organisation chart (yongji.json), sized from DOMAIN.md.

Three street committees over 22 communities, each community with its joint-building committee;
88 grid branches and 375 building groups, so that communities, grids and buildings together make
the 485 grassroots party organisations of Yongji's urban area; three model households a building.
Unit names are numbered placeholders: the articles do not list the real ones.
Regenerate with `python -m adapters.demo.charts.yongji > adapters/demo/charts/yongji.json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

STREETS = (("chengdong", "城东", 8), ("chengxi", "城西", 7), ("chengbei", "城北", 7))
GRIDS_PER_COMMUNITY = 4
FIVE_BUILDING_GRIDS = 23  # the first 23 grids have five buildings, the other 65 have four
HOUSEHOLDS_PER_BUILDING = 3


def records() -> list[dict[str, Any]]:
    """The chart as records, root first."""
    out: list[dict[str, Any]] = [
        {"id": "lg", "name": "永济市城市基层党建工作领导小组", "level": "leading_group", "parent": None}
    ]
    grid_number = 0
    for street, label, communities in STREETS:
        street_id = f"st-{street}"
        out.append({"id": street_id, "name": f"{label}街道共建委员会", "level": "street_committee", "parent": "lg"})
        for c in range(1, communities + 1):
            joint_id, community_id = f"jc-{street}-{c:02d}", f"cm-{street}-{c:02d}"
            out.append(
                {"id": joint_id, "name": f"{label}第{c}社区联建委员会", "level": "joint_committee", "parent": street_id}
            )
            out.append(
                {"id": community_id, "name": f"{label}第{c}社区党组织", "level": "community", "parent": joint_id}
            )
            for g in range(1, GRIDS_PER_COMMUNITY + 1):
                grid_number += 1
                grid_id = f"gr-{street}-{c:02d}-{g}"
                out.append(
                    {
                        "id": grid_id,
                        "name": f"{label}第{c}社区第{g}网格党支部",
                        "level": "grid_branch",
                        "parent": community_id,
                    }
                )
                buildings = 5 if grid_number <= FIVE_BUILDING_GRIDS else 4
                for b in range(1, buildings + 1):
                    building_id = f"bg-{street}-{c:02d}-{g}-{b}"
                    out.append(
                        {
                            "id": building_id,
                            "name": f"{label}第{c}社区{g}网格{b}号楼党小组",
                            "level": "building_group",
                            "parent": grid_id,
                        }
                    )
                    for h in range(1, HOUSEHOLDS_PER_BUILDING + 1):
                        out.append(
                            {
                                "id": f"mh-{street}-{c:02d}-{g}-{b}-{h}",
                                "name": f"{label}第{c}社区{g}网格{b}号楼党员示范户{h}",
                                "level": "member_household",
                                "parent": building_id,
                            }
                        )
    return out


def render() -> str:
    """The JSON text of yongji.json: one unit a line, so diffs stay readable."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records()]
    return '{"units": [\n' + ",\n".join(lines) + "\n]}\n"


if __name__ == "__main__":
    sys.stdout.write(render())
