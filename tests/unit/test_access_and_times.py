"""Who may do what where, and which times are believed: the one policy, applied by the application to every
command whatever channel it came by."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import msgspec
import pytest

from engine.access import SUPERVISION, Principal, Role
from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.commands import Claim, Command, Escalate, Report
from engine.errors import (
    AlreadyReported,
    EscalationRefused,
    Forbidden,
    GrievanceError,
    GrievanceNotFound,
    InvalidValue,
)
from engine.grievance import Category, ClaimMode, EscalationReason
from engine.personal_data import masked
from engine.service_chain import ServiceChain
from tests.conftest import OPERATOR, T0
from tests.scenario import COMMUNITY, GRID, HOUSEHOLD, STREET

WORKER = Principal("worker-li", Role.GRID_WORKER, GRID)
NOW = T0 + timedelta(days=30)


@pytest.fixture
def chain(yongji: OrgChart) -> ServiceChain:
    return ServiceChain({"PERSISTENCE_MODULE": "eventsourcing.popo"}, chart=yongji, clock=PlaybackClock(NOW))


def report(at=NOW, actor="worker-li", unit=HOUSEHOLD, gid=None) -> Report:  # type: ignore[no-untyped-def]
    return Report(grievance_id=gid or uuid4(), command_id=str(uuid4()), actor=actor, occurred_at=at, unit_id=unit,
                  category=Category.PARKING, title="t", description="d")  # fmt: skip


def refusal(chain: ServiceChain, command: Command, by: Principal) -> GrievanceError:
    (result,) = chain.execute([command], principal=by)
    assert isinstance(result, GrievanceError), result
    return result


def test_a_grid_worker_acts_within_their_jurisdiction_as_themselves(chain: ServiceChain) -> None:
    chain.apply(report(), principal=WORKER)
    outside = refusal(chain, report(unit="mh-chengdong-01-1-1-1"), WORKER)
    assert (type(outside), outside.field) == (Forbidden, "unit_id")
    as_someone_else = refusal(chain, report(actor="secretary-zhang"), WORKER)
    assert (type(as_someone_else), as_someone_else.field) == (Forbidden, "actor")


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.AUDITOR])
def test_readers_send_no_commands(chain: ServiceChain, role: Role) -> None:
    refused = refusal(chain, report(actor="reader"), Principal("reader", role, STREET))
    assert (type(refused), refused.field) == (Forbidden, "role")


def test_commands_on_a_grievance_that_never_passed_the_jurisdiction_learn_it_does_not_exist(
    chain: ServiceChain,
) -> None:
    gid = uuid4()
    chain.apply(report(actor="secretary", unit=COMMUNITY, gid=gid), principal=OPERATOR)
    claim = Claim(grievance_id=gid, command_id="c", actor="worker-li", occurred_at=NOW, unit_id=HOUSEHOLD,
                  mode=ClaimMode.MEMBER, claimant="worker-li")  # fmt: skip
    hidden = refusal(chain, claim, WORKER)
    unknown = refusal(chain, msgspec.structs.replace(claim, grievance_id=uuid4()), WORKER)
    assert (type(hidden), hidden.field) == (type(unknown), unknown.field) == (GrievanceNotFound, "grievance_id")


def test_times_from_phones_are_bounded_by_the_servers_clock(chain: ServiceChain) -> None:
    chain.apply(report(at=NOW - timedelta(hours=71)), principal=WORKER)  # offline over a weekend: believed
    chain.apply(report(at=NOW + timedelta(minutes=4)), principal=WORKER)  # a clock a little fast: believed
    stale = refusal(chain, report(at=NOW - timedelta(hours=73)), WORKER)
    assert (type(stale), stale.field) == (InvalidValue, "occurred_at")
    assert "72 hours before the server's clock" in stale.reason
    ahead = refusal(chain, report(at=NOW + timedelta(minutes=6)), WORKER)
    assert (type(ahead), ahead.field) == (InvalidValue, "occurred_at")
    assert "future" in ahead.reason


def test_only_an_operators_historic_import_goes_further_back(chain: ServiceChain) -> None:
    chain.apply(report(at=T0 - timedelta(days=400)), principal=OPERATOR)
    assert type(refusal(chain, report(at=NOW + timedelta(hours=1)), OPERATOR)) is InvalidValue  # never ahead


def test_only_supervision_escalates_for_lateness(chain: ServiceChain) -> None:
    gid = uuid4()
    # Imported with its own times, so it was due to be claimed 36 h ago.
    chain.apply(report(at=NOW - timedelta(hours=60), gid=gid), principal=OPERATOR)
    overdue = Escalate(grievance_id=gid, command_id="late", actor="worker-li", occurred_at=NOW,
                       reason=EscalationReason.OVERDUE)  # fmt: skip
    forged = refusal(chain, overdue, WORKER)
    assert (type(forged), forged.field) == (Forbidden, "reason")
    admin = Principal("admin", Role.ADMIN)
    assert type(refusal(chain, msgspec.structs.replace(overdue, actor="admin"), admin)) is Forbidden
    escalated = chain.apply(msgspec.structs.replace(overdue, actor=SUPERVISION.name), principal=SUPERVISION)
    assert escalated.unit_id == "bg-chengxi-03-2-1"


def test_overdue_is_the_servers_clock_to_judge_not_the_senders(chain: ServiceChain) -> None:
    """A backdated report and an escalation stamped days later do not make a grievance overdue: the attack of
    a grid worker's batch that moved a grievance from a grid to the leading group by backdating."""
    gid = uuid4()
    chain.apply(report(at=NOW, gid=gid), principal=WORKER)
    stamped_later = Escalate(grievance_id=gid, command_id="s", actor=SUPERVISION.name,
                             occurred_at=NOW + timedelta(minutes=5), reason=EscalationReason.OVERDUE)  # fmt: skip
    with pytest.raises(EscalationRefused):
        chain.apply(stamped_later, principal=SUPERVISION)


def test_system_principals_only_escalate(chain: ServiceChain) -> None:
    refused = refusal(chain, report(actor=SUPERVISION.name), SUPERVISION)
    assert (type(refused), refused.field) == (Forbidden, "kind")


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("\u200b\u200b\u200b", "invisible"),
        ("Cars\x00 block", "control character U+0000"),
        ("\u202eenal erif", "bidirectional control U+202E"),
        ("\u2066hidden\u2069", "bidirectional control U+2066"),
    ],
)
def test_free_text_that_would_read_otherwise_than_it_is_is_refused(chain: ServiceChain, title: str,
                                                                     words: str) -> None:  # fmt: skip
    refused = refusal(chain, msgspec.structs.replace(report(), title=title), WORKER)
    assert (type(refused), refused.field) == (InvalidValue, "title")
    assert words in refused.reason


def test_free_text_is_stored_normalised(chain: ServiceChain) -> None:
    command = msgspec.structs.replace(report(), title="Cafe\u0301 closed", description="line one\nline\ttwo")
    chain.apply(command, principal=WORKER)
    stored = chain.grievance(command.grievance_id)
    assert (stored.title, stored.description) == ("Café closed", "line one\nline\ttwo")


@pytest.mark.parametrize("actor", ["worker li", "worker\x00li", "wörker", "-worker", "worker\u202e"])
def test_ids_keep_to_a_safe_alphabet(chain: ServiceChain, actor: str) -> None:
    refused = refusal(chain, report(actor=actor), OPERATOR)
    assert (type(refused), refused.field) == (InvalidValue, "actor")


def test_a_phone_a_little_fast_does_not_block_the_other_writers(chain: ServiceChain) -> None:
    gid = uuid4()
    chain.apply(report(at=NOW + timedelta(minutes=4), gid=gid), principal=WORKER)  # believed, recorded at now
    assert chain.grievance(gid).reported_at == NOW
    claim = Claim(grievance_id=gid, command_id="c", actor="worker-li", occurred_at=NOW, unit_id=HOUSEHOLD,
                  mode=ClaimMode.MEMBER, claimant="worker-li")  # fmt: skip
    assert chain.apply(claim, principal=WORKER).status == "claimed"


def test_limits_run_from_when_the_chain_got_a_command_not_from_the_phones_time(chain: ServiceChain) -> None:
    """A report stamped 71 hours back (within the lag) does not arrive overdue: the limit to claim runs from the
    server's clock. (A backdated batch of report, claim and escalate once made a community 'miss' a claim.)"""
    gid = uuid4()
    chain.apply(report(at=NOW - timedelta(hours=71), gid=gid), principal=WORKER)
    assert chain.grievance(gid).claim_due == NOW + timedelta(days=1)
    late = Escalate(grievance_id=gid, command_id="s", actor=SUPERVISION.name, occurred_at=NOW,
                    reason=EscalationReason.OVERDUE)  # fmt: skip
    with pytest.raises(EscalationRefused):
        chain.apply(late, principal=SUPERVISION)


def test_a_report_on_an_id_outside_ones_jurisdiction_gets_one_answer_whatever_its_command_id(
    chain: ServiceChain,
) -> None:
    gid = uuid4()
    chain.apply(report(actor="secretary", unit=COMMUNITY, gid=gid), principal=OPERATOR)
    for command_id in (f"supervision:{gid}:v1", "another", report(gid=gid).command_id):
        refused = refusal(chain, msgspec.structs.replace(report(gid=gid), command_id=command_id), WORKER)
        assert (type(refused), refused.field) == (AlreadyReported, "grievance_id")


def test_a_gateway_vouches_for_its_users_within_the_time_bounds_and_never_for_lateness(chain: ServiceChain) -> None:
    gateway = Principal("app-gateway", Role.GATEWAY)
    chain.apply(report(actor="resident-app-user-1", unit="mh-chengdong-01-1-1-1"), principal=gateway)
    stale = refusal(chain, report(at=NOW - timedelta(hours=73)), gateway)
    assert (type(stale), stale.field) == (InvalidValue, "occurred_at")
    gid = uuid4()
    chain.apply(report(gid=gid), principal=gateway)
    forged = Escalate(grievance_id=gid, command_id="late", actor="supervision", occurred_at=NOW,
                      reason=EscalationReason.OVERDUE)  # fmt: skip
    assert (type(refused := refusal(chain, forged, gateway)), refused.field) == (Forbidden, "reason")


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("resident_name", "王芳", "王*"),
        ("resident_name", "芳", "*"),
        ("resident_phone", "139 0000 1234", "139****1234"),
        ("resident_phone", "6512-3456", "****3456"),
        ("resident_id", "zhang.san@example.com", "zh*******************"),
    ],
)
def test_personal_data_is_masked_so_that_little_of_it_shows(field: str, value: str, shown: str) -> None:
    assert masked(field, value) == shown
