"""What every `grievance` command shares: opening the store, one-line failures, output."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import click
import msgspec
from eventsourcing.persistence import PersistenceError
from rich.console import Console

from adapters import composition
from adapters.audit.trail import AuditTrail
from adapters.intake import Intake
from adapters.logs import configure_logging
from adapters.settings import Settings
from engine import times
from engine.access import Principal, Role
from engine.clock import Clock
from engine.commands import Command
from engine.errors import BrokenHistory, GrievanceError, InfrastructureError, InvalidValue
from engine.roster_commands import RosterCommand, RosterOutcome
from engine.service_chain import ServiceChain
from projections.dashboard.queries import Dashboard
from projections.dashboard.runner import DashboardProjection
from schemas.results import Result

F = TypeVar("F", bound=Callable[..., Any])
EXIT_REJECTED = 1
# `submit`: a batch of which the rules refused some commands and the rest were stored.
EXIT_PARTLY_REFUSED = 5
EXIT_INFRASTRUCTURE = 3
# Off a terminal (pipes, CI logs) rich would assume 80 columns and squeeze the dashboard tables.
# No markup: what is printed holds residents' and workers' own words, where "[urgent]" must stay on the page.
out = Console(
    markup=False, highlight=False, soft_wrap=True, width=None if sys.stdout is not None and sys.stdout.isatty() else 160
)
encoder = msgspec.json.Encoder()


EXIT_BROKEN = 4
# The bracketed code of a line that names none: what scripts can tell apart by exit code alone.
_CODES = {EXIT_REJECTED: "invalid_value", EXIT_INFRASTRUCTURE: "infrastructure", EXIT_BROKEN: "broken"}


def fail(message: str, code: int = EXIT_REJECTED, *, error_code: str | None = None) -> NoReturn:
    """One clear line on stderr, `error: FIELD: REASON [code]` (the message is "FIELD: REASON"), and exit `code`."""
    # A line break in what it quotes (a setting's value, a file's name) would make one error read as two lines.
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    click.echo(f"error: {one_line} [{error_code or _CODES.get(code, 'error')}]", err=True)
    sys.exit(code)


def refuse(error: GrievanceError) -> NoReturn:
    """A refused command or question: its field, reason and stable code on one line, and exit 1 (4 when the
    grievance's stored history is broken, as `verify` exits on a broken link)."""
    fail(str(error), EXIT_BROKEN if isinstance(error, BrokenHistory) else EXIT_REJECTED, error_code=error.code)


@dataclass
class Session:
    """What a command works with, as the composition root builds it: its settings, the chain, and (when asked
    for) the dashboard views' runner."""

    settings: Settings
    chain: ServiceChain
    projection: DashboardProjection | None = None

    @property
    def runner(self) -> DashboardProjection:
        """The dashboard projection; only for sessions opened with views=True."""
        assert self.projection is not None, "opened without views"
        return self.projection

    @property
    def principal(self) -> Principal:
        """Who this command line acts as: an operator at the store."""
        return composition.operator(self.settings)

    def intake(self) -> Intake:
        """Request intake over the chain."""
        return composition.build_intake(self.chain, composition.build_receipts(self.settings, self.chain))

    def apply(self, verb: str, commands: Sequence[Command]) -> list[Result]:
        """Apply commands as this operator, and record each with the operator who ran it."""
        results = self.intake().submit(commands, principal=self.principal)
        composition.build_operator_log(self.chain).record(self.principal, verb, commands, results)
        return results

    def apply_roster(self, verb: str, commands: Sequence[RosterCommand]) -> list[RosterOutcome | GrievanceError]:
        """Apply roster commands as this operator, in one batch, and record each with the operator who ran it."""
        outcomes = composition.roster_of(self.chain).execute(commands, principal=self.principal)
        composition.build_operator_log(self.chain).record_roster(self.principal, verb, commands, outcomes)
        return outcomes

    def trail(self) -> AuditTrail:
        """Auditors' reading of the chain."""
        return composition.build_audit_trail(self.chain)

    def dashboard(self) -> Dashboard:
        """The dashboard's questions over the views (opened with views=True)."""
        return composition.build_dashboard(self.settings, self.runner.views, self.chain.chart)


def settings_or_exit() -> Settings:
    """This process's settings; a broken one is one line and exit 3."""
    try:
        return Settings.from_env()
    except InfrastructureError as e:
        fail(str(e), EXIT_INFRASTRUCTURE)


@contextmanager
def infrastructure_failures_exit() -> Iterator[None]:
    """The CLI's one handler of what stops a process: a broken setting, chart or token file, or a store that
    cannot be opened or fails, is one line and exit 3."""
    try:
        yield
    except InfrastructureError as e:
        fail(str(e), EXIT_INFRASTRUCTURE)
    except PersistenceError as e:
        if str(e) == "database is locked":  # SQLite's own words, after its lock timeout
            fail("event store failed: database is locked: another process holds the store's write lock; the "
                 "transaction that waited for it stored nothing: try again", EXIT_INFRASTRUCTURE)  # fmt: skip
        fail(f"event store failed: {e}", EXIT_INFRASTRUCTURE)


@contextmanager
def opened(*, views: bool = False, log_level: str = "warning", clock: Clock | None = None) -> Iterator[Session]:
    """The store for this process's settings, on the server's clock unless given one (historic playback, a sweep
    as of a past time); any infrastructure failure is one line and exit 3."""
    with infrastructure_failures_exit():
        settings = Settings.from_env()
        # A person at a terminal reads the result line; the per-command log is for processes.
        configure_logging(settings.log_format, settings.log_level or log_level)
        try:
            chain = composition.build_chain(settings, clock=clock)
            session = Session(settings, chain, composition.build_projection(settings, chain) if views else None)
        except (PersistenceError, OSError) as e:
            fail(f"cannot open the event store: {e}", EXIT_INFRASTRUCTURE)
        try:
            yield session
        finally:
            chain.close()


def holder_on_roster(session: Session, name: str, role: Role, unit_id: str | None) -> None:
    """Refuse, one line and exit 1, a grid worker's token or key for someone the store's roster does not have
    where the token's unit covers (engine/roster_book.py decides)."""
    try:
        composition.roster_of(session.chain).check_holder(name, role, unit_id)
    except GrievanceError as e:
        refuse(e)


def reveal_options(f: F) -> F:
    """--reveal and --reason: residents' names and phones are masked unless asked for, with a reason."""
    f = click.option("--reason", help="Why the personal data must be seen whole (recorded for auditors).")(f)
    return click.option("--reveal", is_flag=True, help="Show residents' names and phones whole.")(f)


def revealing(session: Session, grievance_id: UUID, reveal: bool, reason: str | None, verb: str) -> bool:
    """Whether to show personal data whole: asked and said why, and then recorded (as this operator) first."""
    if not reveal:
        return False
    if not reason or not reason.strip():
        fail("reason: say why the resident's personal data must be seen whole (--reason); it is recorded")
    try:
        composition.build_disclosures(session.chain).record(session.principal, grievance_id, channel=f"cli: {verb}",
                                                            reason=reason.strip())  # fmt: skip
    except GrievanceError as e:
        refuse(e)
    return True


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def parse_time(field: str, value: str) -> datetime:
    """An RFC 3339 time with an offset (seconds optional), as every channel reads one, or a one-line failure
    naming the option."""
    try:
        return times.parse_time(field, value)
    except InvalidValue as e:
        refuse(e)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C, so that a long-running command finishes its batch and stops."""
    stop = threading.Event()

    def handler(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def parse_uuid(value: str, field: str = "grievance_id") -> UUID:
    """A UUID, or a one-line failure naming the field."""
    try:
        return UUID(value)
    except ValueError:
        fail(f"{field}: {value!r} is not a UUID")
