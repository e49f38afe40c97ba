"""Who is given a report's receipt (AccessPolicy.may_hold_receipt): whoever holds it rates as the resident, so a
grid worker gets it only to hand over where no phone is known, and nobody else ever."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from engine.access import AccessPolicy, Principal, Role
from engine.chart import OrgChart
from engine.commands import Report, Resident
from engine.grievance import Category
from tests.scenario import HOUSEHOLD


def _report(phone: str | None) -> Report:
    return Report(grievance_id=uuid4(), command_id="r1", actor="worker-li", occurred_at=datetime.now(UTC),
                  unit_id=HOUSEHOLD, category=Category.SAFETY, title="t", description="d",
                  resident=Resident(resident_id="res-1", name="王秀英", phone=phone or ""))  # fmt: skip


@pytest.mark.parametrize(
    ("who", "phone", "reported_by", "holds"),
    [
        (Principal("worker-li", Role.GRID_WORKER, HOUSEHOLD), "13912345678", "worker-li", False),
        (Principal("worker-li", Role.GRID_WORKER, HOUSEHOLD), None, "worker-li", True),
        (Principal("member-wang", Role.GRID_WORKER, HOUSEHOLD), None, "worker-li", False),
        (Principal("office-zhao", Role.ADMIN), None, "worker-li", False),
        (Principal("app", Role.GATEWAY), "13912345678", "worker-li", True),
        (Principal("op", Role.OPERATOR), "13912345678", "worker-li", True),
    ],
    ids=["worker-phone-known", "worker-no-phone", "another-worker", "admin", "gateway", "operator"],
)
def test_the_receipt_goes_where_it_cannot_rate_the_holders_own_work(yongji: OrgChart, who: Principal,
                                                                    phone: str | None, reported_by: str,
                                                                    holds: bool) -> None:  # fmt: skip
    assert AccessPolicy(yongji).may_hold_receipt(who, _report(phone), reported_by) is holds
