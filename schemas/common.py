"""Constrained field types shared by the messages the engine sends out (a test keeps them equal to the
commands' own, in `engine/commands.py`), so limits read the same in code and JSON Schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

Identifier = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*$",
        description="An id: 1-100 characters of A-Z, a-z, 0-9 and . _ : @ + -, starting with a letter or digit.",
    ),
]
AwareDatetime = Annotated[
    datetime,
    Meta(
        tz=True,
        description="An RFC 3339 time with a UTC offset (Z or ±hh:mm); in a command, the seconds may be left out.",
    ),
]
Version = Annotated[int, Meta(ge=1)]

# The engine's vocabularies, spelt out for the wire (a test keeps them equal to the engine's enums).
LevelName = Literal[
    "member_household",
    "building_group",
    "grid_branch",
    "community",
    "joint_committee",
    "street_committee",
    "leading_group",
]
StatusName = Literal["waiting", "claimed", "resolved", "replied"]
CategoryName = Literal[
    "environment",
    "property",
    "infrastructure",
    "utilities",
    "safety",
    "elderly_care",
    "employment",
    "neighbours",
    "parking",
    "other",
]
ChannelName = Literal["grid_visit", "wechat_group", "hotline", "walk_in", "app"]
ClaimModeName = Literal["organisation", "group", "member"]
EscalationReasonName = Literal["requested", "overdue"]
RatingName = Literal["satisfied", "basically_satisfied", "dissatisfied"]
