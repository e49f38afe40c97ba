"""Results of the resident's loop for the office: closures owed a callback (回访), and who gave the ratings."""

from __future__ import annotations

from uuid import UUID

import msgspec

from schemas.common import AwareDatetime, StatusName


class CallbackItem(msgspec.Struct, kw_only=True, frozen=True):
    """A closure no one has rated since `closed_at`: the office should call its resident back."""

    grievance_id: UUID
    unit_id: str
    unit_name: str
    status: StatusName
    closed_at: AwareDatetime
    days_waiting: int


class RatingSources(msgspec.Struct, kw_only=True, frozen=True):
    """How a scope's ratings were given: satisfaction, and beside it the share the residents gave themselves
    (with their receipt) rather than on a callback or typed in before ratings said how."""

    unit_id: str
    rated: int
    satisfaction_rate: float | None
    by_residents: int
    by_callback: int
    resident_share: float | None


class CallbackQueue(msgspec.Struct, kw_only=True, frozen=True):
    """The closures of a unit and below not rated within `days` days, oldest first, and its ratings' sources."""

    unit_id: str
    as_of: AwareDatetime
    days: int
    closures: list[CallbackItem]
    ratings: RatingSources
