"""The resident's loop on the command line: the callback queue (回访) for the office, and the sender process
that delivers residents' messages from the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import msgspec
from rich.console import Console
from rich.table import Table

from adapters import composition
from adapters.cli.session import fail, json_option, opened, refuse, settings_or_exit, stop_on_signals
from engine.errors import ConfigurationError, GrievanceError
from projections.resident_loop.queries import callback_queue

out = Console(highlight=False)


def register(main: click.Group) -> None:
    for command in (callbacks, notify):
        main.add_command(command)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


@click.command()
@click.option("--unit", "unit_id", help="A unit; default: the whole chart.")
@click.option("--days", type=click.IntRange(1, 365), help="Days unrated; default GRIEVANCE_CALLBACK_DAYS (7).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
def callbacks(unit_id: str | None, days: int | None, limit: int, as_json: bool) -> None:
    """Closures nobody rated within the days, oldest first: whom the office calls back (回访); and beside the
    satisfaction, the share of ratings residents gave themselves."""
    with opened() as session:
        chain = session.chain
        try:
            unit = chain.chart.unit(unit_id, field="--unit").id if unit_id else chain.chart.root.id
        except GrievanceError as e:
            refuse(e)
        tables, projection = composition.build_resident_loop(chain)
        queue = callback_queue(projection, tables, chain.chart, unit, now=datetime.now(UTC),
                               days=days or session.settings.callback_days, limit=limit)  # fmt: skip
    if as_json:
        click.echo(msgspec.json.encode(queue).decode())
        return
    zone = session.settings.display_zone
    table = Table(title=f"回访 callbacks owed: closures unrated for {queue.days} days or more ({len(queue.closures)})")
    for column in ("grievance", "unit", "status", "closed", "days"):
        table.add_column(column)
    for c in queue.closures:
        table.add_row(str(c.grievance_id), f"{c.unit_name} ({c.unit_id})", c.status, zone.minute(c.closed_at),
                      str(c.days_waiting))  # fmt: skip
    out.print(table)
    r = queue.ratings
    out.print(f"ratings: {r.rated}, satisfied {_percent(r.satisfaction_rate)}; given by residents "
              f"{_percent(r.resident_share)} ({r.by_residents}), on callbacks {r.by_callback}")  # fmt: skip


@click.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option("--idle-wait", type=click.FloatRange(0.05, 60), default=1.0, show_default=True,
              help="Seconds to wait when nothing is due.")  # fmt: skip
@click.option(
    "--new-secret",
    is_flag=True,
    help="Make GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE (the gateway checks signatures with it), and exit.",
)
def notify(once: bool, idle_wait: float, new_secret: bool) -> None:
    """Deliver residents' messages (reported with the receipt, claimed, escalated, answered, asked to rate) from
    the outbox: through GRIEVANCE_NOTIFY_WEBHOOK_URL's gateway (signed as Standard Webhooks specifies), else
    GRIEVANCE_NOTIFY_FILE, else this console."""
    if new_secret:
        _new_secret()
        return
    with opened(log_level="info") as session:
        notifier = composition.build_notifier(session.settings, session.chain)
        if once:
            states = notifier.deliver_once()
            click.echo(", ".join(f"{state} {n}" for state, n in sorted(states.items())) or "nothing due", err=True)
            return
        notifier.run(stop_on_signals(), idle_wait=idle_wait)


def _new_secret() -> None:
    from adapters.notifications.senders import SECRET_SETTING, new_webhook_secret

    path = settings_or_exit().notify_webhook_secret_file
    try:
        if path is None:
            raise ConfigurationError(f"{SECRET_SETTING}: name the file to make")
        new_webhook_secret(path)
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    click.echo(f"made {path}: give the gateway its contents to check the messages' webhook-signature", err=True)
