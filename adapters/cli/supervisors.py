"""The supervisors' commands: the dashboard, its projections, supervision, and the Yongji demo."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import msgspec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from adapters import composition
from adapters.cli.session import (
    EXIT_INFRASTRUCTURE,
    fail,
    json_option,
    opened,
    out,
    parse_time,
    refuse,
    stop_on_signals,
)
from adapters.demo.year import RESOLVED, YEAR_END, YEAR_START, YongjiYear
from adapters.display_zone import DisplayZone
from engine.clock import PlaybackClock
from engine.commands import Outcome
from engine.errors import GrievanceError
from engine.levels import Level, label
from projections.dashboard.queries import Dashboard, twelve_months_to
from projections.dashboard.runner import PARTED_REBUILD_EVENTS
from projections.dashboard.tables import PROJECTION
from schemas.dashboard import LevelSettled, ViewsHealth


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=out, transient=False,
    )  # fmt: skip


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def _unit_cell(name: str, unit_id: str, scope: str) -> str:
    return f"{name} ({unit_id}) itself 本级" if scope == "unit_itself" else f"{name} ({unit_id})"


def _settled_cells(steps: list[LevelSettled]) -> tuple[str, ...]:
    """Closures resolved and replied, those later reopened, and what stands settled now (resolved / replied)."""
    resolved, replied = sum(s.resolved for s in steps), sum(s.replied for s in steps)
    again_resolved, again_replied = sum(s.reopened_resolved for s in steps), sum(s.reopened_replied for s in steps)
    return (
        f"{resolved:,}", f"{replied:,}", f"{again_resolved:,} / {again_replied:,}",
        f"{resolved - again_resolved:,} / {replied - again_replied:,}",
    )  # fmt: skip


def print_dashboard(
    dashboard: Dashboard, unit_id: str | None, now: datetime, months: tuple[str, str], zone: DisplayZone
) -> None:
    """The headline, the three rates of each unit below, the funnel, and the most overdue units; `now` shown in
    the display zone. Every table is asked before any is printed, so a refused question prints nothing."""
    shown: list[Table] = []
    head = dashboard.headline(unit_id, now=now)
    unit = dashboard.chart.unit(head.unit_id)
    table = Table(title=f"{unit.name} ({unit.id}) as of {zone.minute(now)}")
    for column in (
        "resolved 已解决",
        "replied 已答复",
        "open 办理中",
        "waiting 待认领",
        "claimed 已认领",
        "overdue 超期",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        *(f"{v:,}" for v in (head.resolved, head.replied, head.open, head.waiting, head.claimed, head.overdue))
    )
    shown.append(table)

    rates = Table(
        title=f"Rates {months[0]} to {months[1]}: response, resolution, satisfaction "
        "(reported: grievances reported in these months)"
    )
    for column in (
        "unit",
        "level",
        "reported",
        "response",
        "resolution",
        "satisfaction",
        "org / group / member claims",
    ):
        rates.add_column(column, justify="left" if column in ("unit", "level") else "right")
    for r in dashboard.rates(unit_id, from_month=months[0], to_month=months[1]):
        rates.add_row(
            _unit_cell(r.name, r.unit_id, r.scope), Level(r.level).chinese, f"{r.reported:,}",
            _percent(r.response_rate), _percent(r.resolution_rate), _percent(r.satisfaction_rate),
            f"{r.claims_by_organisation} / {r.claims_by_group} / {r.claims_by_member}",
        )  # fmt: skip
    shown.append(rates)

    funnel = Table(
        title="Settled at each step of the chain (closures; a closure later reopened counts until it is reopened)"
    )
    for column in ("step", "resolved 已解决", "replied 已答复", "reopened later 重新办理", "settled now 现已办结"):
        funnel.add_column(column, justify="left" if column == "step" else "right")
    steps = dashboard.settled_by_level(unit_id)
    for step in steps:
        funnel.add_row(label(Level(step.level)), *_settled_cells([step]))
    funnel.add_section()
    funnel.add_row("total 合计 (= the headline's grievances)", *_settled_cells(steps))
    shown.append(funnel)

    overdue = dashboard.most_overdue_units(now=now, limit=5)
    if overdue:
        late = Table(title="Most overdue units")
        late.add_column("unit")
        late.add_column("overdue", justify="right")
        for u, n in overdue:
            late.add_row(f"{u.name} ({u.id})", str(n))
        shown.append(late)
    for table in shown:
        out.print(table)


def register(main: click.Group) -> None:
    """Add these commands to the `grievance` group."""
    main.add_command(demo)
    main.add_command(dashboard)
    main.add_command(projections)
    main.add_command(supervise)


@click.command()
@click.option("--seed", default=2020, show_default=True, help="Seed of the year's randomness.")
def demo(seed: int) -> None:
    """Play a year (2020) of Yongji's grid work into an empty store, then show the dashboard.

    It ends, as Yongji's year did, with exactly 1,115 grievances resolved.
    """
    clock = PlaybackClock(YEAR_START)
    with opened(views=True, clock=clock) as session:
        if session.chain.recorder.max_notification_id():
            fail(
                f"GRIEVANCE_DATABASE_URL: the store at {session.settings.redacted_url()} already holds events; the "
                "demo needs an empty one (remove the file or set GRIEVANCE_DATABASE_URL)",
                error_code="not_empty",
            )
        year = YongjiYear(
            session.chain,
            session.runner,
            composition.build_supervision(session.chain, session.runner.views),
            principal=session.principal,
            clock=clock,
            seed=seed,
            roster=composition.roster_of(session.chain),
        )
        with progress_bar() as bar:
            task = bar.add_task("Playing 2020", total=(YEAR_END - YEAR_START).days)
            applied = year.play(on_day=lambda _day: bar.advance(task))
        out.print(f"{applied:,} commands applied; the dashboard views hold {session.runner.views.position():,} events.")
        dash = session.dashboard()
        print_dashboard(dash, None, YEAR_END, twelve_months_to(YEAR_END), session.settings.display_zone)
        resolved = dash.headline(now=YEAR_END).resolved
        if resolved != RESOLVED:
            fail(f"resolved: the year ended with {resolved} resolved, not {RESOLVED}", EXIT_INFRASTRUCTURE)


@click.command()
@click.option("--unit", "unit_id", help="A unit of the chart (default: the leading group).")
@click.option(
    "--at",
    "at",
    help="As of this time (RFC 3339 with an offset, seconds optional); default now, or the end of the latest day "
    "with activity when nothing happened in the twelve months to now.",
)
@click.option("--from-month", help="First month of the rates (YYYY-MM); default: of the twelve before --at.")
@click.option("--to-month", help="Last month of the rates (YYYY-MM); default: the last to begin before --at.")
@click.option("--catch-up/--no-catch-up", default=True, show_default=True,
              help="Bring the views up to date with the events first.")  # fmt: skip
@json_option
def dashboard(
    unit_id: str | None, at: str | None, from_month: str | None, to_month: str | None, catch_up: bool, as_json: bool
) -> None:
    """The headline, the three rates by unit, the funnel and the most overdue units."""
    named = parse_time("at", at) if at else None
    with opened(views=True) as session:
        if catch_up:
            session.runner.catch_up()
        dash = session.dashboard()
        # Without --at, the latest activity's: a store of a past year shows that year, not twelve empty months.
        now = named or dash.default_as_of(datetime.now(UTC))
        default_from, default_to = twelve_months_to(now)
        to_month, from_month = to_month or default_to, from_month or default_from
        try:
            if as_json:
                document = {
                    "headline": dash.headline(unit_id, now=now),
                    "counts": dash.counts(unit_id),
                    "rates": dash.rates(unit_id, from_month=from_month, to_month=to_month),
                    "settled_by_level": dash.settled_by_level(unit_id),
                    "overdue_queue": dash.overdue_queue(unit_id, now=now, limit=20),
                }
                click.echo(msgspec.json.encode(document))
            else:
                print_dashboard(dash, unit_id, now, (from_month, to_month), session.settings.display_zone)
        except GrievanceError as e:
            refuse(e)


@click.group()
def projections() -> None:
    """The dashboard's read models: rebuild them from zero, keep them up to date, see how far they are."""


F = TypeVar("F", bound=Callable[..., Any])


def page_size_option(default: int) -> Callable[[F], F]:
    return click.option(
        "--page-size", type=click.IntRange(1, 100_000), default=default, show_default=True,
        help="Events a transaction.",
    )  # fmt: skip


# A follower keeps pages small, so that each event shows soon; a rebuild takes them large, so that the
# counters of a unit are written once for many events rather than once for a few.
FOLLOW_PAGE, REBUILD_PAGE = 2000, 20_000


def _check_name(name: str | None) -> None:
    if name not in (None, PROJECTION):
        fail(f"name: no projection {name!r}; there is: {PROJECTION}")


@projections.command()
@click.argument("name", required=False)
@page_size_option(REBUILD_PAGE)
@click.option(
    "--processes", type=click.IntRange(1, 64), default=composition.rebuild_processes(), show_default=True,
    help=f"Processes to project in, this one included, each a part of the grievances (a log of fewer than "
    f"{PARTED_REBUILD_EVENTS:,} events is projected in one).",
)  # fmt: skip
def rebuild(name: str | None, page_size: int, processes: int) -> None:
    """Empty the views and project every stored event again, with a progress bar."""
    _check_name(name)
    with opened(views=True) as session:
        runner = session.runner
        runner.page_size = page_size
        total = session.chain.recorder.max_notification_id() or 0
        elsewhere = composition.build_rebuild_parts(session.settings, processes, page_size=page_size)
        with progress_bar() as bar:
            task = bar.add_task(f"Rebuilding {PROJECTION}", total=total)
            started = time.perf_counter()
            events = runner.rebuild(on_page=lambda _count, position: bar.update(task, completed=position),
                                    elsewhere=elsewhere)  # fmt: skip
        seconds = time.perf_counter() - started
        out.print(f"{events:,} events projected in {seconds:.1f} s ({events / max(seconds, 1e-9):,.0f} events/s).")
        aside, _ = runner.set_aside(limit=1)
        if aside:
            out.print(f"{aside:,} events set aside as unreadable: `grievance projections status` lists them, "
                      "`grievance verify --all` names their grievances.")  # fmt: skip


@projections.command()
@click.argument("name", required=False)
@click.option("--idle-wait", default=0.2, show_default=True, help="Seconds to wait for new events when idle.")
@page_size_option(FOLLOW_PAGE)
def run(name: str | None, idle_wait: float, page_size: int) -> None:
    """Keep the views up to date until stopped (SIGTERM or Ctrl-C)."""
    _check_name(name)
    with opened(views=True, log_level="info") as session:
        session.runner.page_size = page_size
        stop = stop_on_signals()
        out.print(f"Following the event log from position {session.runner.views.position():,}.")
        composition.keep_views(session.runner, stop, idle_wait=idle_wait)


@projections.command()
@json_option
def status(as_json: bool) -> None:
    """How far the views are: their position, the events still to project, and any they set aside."""
    with opened(views=True) as session:
        health = composition.build_views_watch(session.runner).health()
    if as_json:
        click.echo(msgspec.json.encode({"name": PROJECTION, **msgspec.structs.asdict(health)}))
        return
    out.print(f"{PROJECTION}: at event {health.position:,}, {health.backlog:,} behind")
    print_set_aside(health)


def print_set_aside(health: ViewsHealth) -> None:
    """The events the views set aside, if any: how many, and the latest with their errors."""
    if not health.set_aside:
        return
    out.print(f"{health.set_aside:,} event{'s' if health.set_aside != 1 else ''} set aside (not counted); latest:")
    for s in health.latest_set_aside:
        out.print(f"  at {s.position:,}: {s.event} v{s.version} of grievance {s.grievance_id}: {s.error}")


@click.command()
@click.option("--at", "at", help="Sweep as of this time (RFC 3339); default now.")
@click.option(
    "--every", type=click.FloatRange(min=1, max=86_400), help="Sweep again every so many seconds until stopped."
)
def supervise(at: str | None, every: float | None) -> None:
    """Escalate grievances past their limit one step (督办); safe to run in several processes at once."""
    if at and every:
        fail("every: give --at or --every, not both")
    # A sweep as of a past time runs the process on that time's clock: overdue is the server's to judge.
    clock = PlaybackClock(parse_time("at", at)) if at else None
    with opened(views=True, log_level="info", clock=clock) as session:
        supervision = composition.build_supervision(session.chain, session.runner.views)
        stop = stop_on_signals()
        while True:
            session.runner.catch_up()
            now = session.chain.clock()
            results = supervision.sweep()
            escalated = sum(isinstance(r, Outcome) and not r.duplicate for r in results)
            shown = session.settings.display_zone.minute(now)
            out.print(f"{shown}: {escalated} escalated, {len(results) - escalated} already handled")
            if every is None or stop.wait(every):
                return
