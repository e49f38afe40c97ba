"""The chain's traffic as the benchmarks send it: most reports name a resident, a share of them one who reported
before, and claims follow reports; long histories and reads beside writes are the benchmarks' own."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from adapters.settings import SHIPPED_CHART
from adapters.storage.chart_file import load_chart
from engine.commands import Claim, Command, RecordProgress, Report, Resident
from engine.grievance import Category, Channel, ClaimMode

CHART = load_chart(SHIPPED_CHART)
HOUSEHOLDS = [u.id for u in CHART if u.level == "member_household"]
# Grid workers name the resident on most reports (the 12345 line always does); some residents report again.
RESIDENT_SHARE = 0.8
RETURNING_SHARE = 0.3
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "秀英桂英建国建华志强淑珍玉兰明海丽娟国平德胜"


class Traffic:
    """Commands as the field sends them, from a seeded random source so runs compare."""

    def __init__(
        self, *, seed: int = 0, resident_share: float = RESIDENT_SHARE, returning_share: float = RETURNING_SHARE
    ) -> None:
        self.random = random.Random(seed)
        self.resident_share = resident_share
        self.returning_share = returning_share
        self.residents: list[Resident] = []
        self.claimed: list[tuple[UUID, str]] = []
        self.sent = 0

    def resident(self) -> Resident | None:
        """The resident a report names: none, one who reported before, or one new to the chain."""
        if self.random.random() >= self.resident_share:
            return None
        if self.residents and self.random.random() < self.returning_share:
            return self.random.choice(self.residents)
        n = len(self.residents)
        name = self.random.choice(SURNAMES) + "".join(self.random.choices(GIVEN, k=2))
        fresh = Resident(resident_id=f"res-{self.random.getrandbits(48):012x}-{n}", name=name,
                         phone=f"139{self.random.randrange(10**8):08d}")  # fmt: skip
        self.residents.append(fresh)
        return fresh

    def report(self, at: datetime, gid: UUID | None = None, unit: str | None = None) -> Report:
        """A new grievance reported at a household."""
        self.sent += 1
        return Report(
            grievance_id=gid or uuid4(),
            command_id=f"r{self.sent}",
            actor="worker-li",
            occurred_at=at,
            unit_id=unit or self.random.choice(HOUSEHOLDS),
            category=self.random.choice(list(Category)),
            channel=Channel.GRID_VISIT,
            title="楼道灯坏了 Broken lamp",
            description="二单元楼道灯一周不亮 Stairwell 2, since Monday.",
            resident=self.resident(),
        )

    def report_and_claim(self, n: int, at: datetime) -> list[Command]:
        """n grievances reported and claimed: 2n commands, 2n events."""
        commands: list[Command] = []
        for _ in range(n):
            report = self.report(at)
            member = f"member-{self.random.randrange(900)}"
            commands += [report, self.claim(report.grievance_id, report.unit_id, member, at + timedelta(hours=1))]
            self.claimed.append((report.grievance_id, member))
        return commands

    def claim(self, gid: UUID, unit: str, member: str, at: datetime) -> Claim:
        """The grievance claimed by a member at its unit."""
        self.sent += 1
        return Claim(grievance_id=gid, command_id=f"c{self.sent}", actor=member, occurred_at=at, unit_id=unit,
                     mode=ClaimMode.MEMBER, claimant=member)  # fmt: skip

    def progress(self, gid: UUID, member: str, at: datetime) -> RecordProgress:
        """A note of progress by the grievance's claimant."""
        self.sent += 1
        return RecordProgress(grievance_id=gid, command_id=f"p{self.sent}", actor=member, occurred_at=at,
                              note="已联系物业 Called the property office")  # fmt: skip

    def mixed(self, n: int, at: datetime) -> list[Command]:
        """n commands of the day's mix: half new reports, half notes of progress on grievances claimed earlier."""
        commands: list[Command] = []
        for _ in range(n):
            if self.claimed and self.random.random() < 0.5:
                commands.append(self.progress(*self.random.choice(self.claimed), at))
            else:
                commands.append(self.report(at))
        return commands
