"""The grievances' verbs: report, claim, progress, escalate, resolve, reply, rate, show, submit, tour, schema."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import click
import msgspec
from rich.table import Table

from adapters import wire
from adapters.cli.audit import print_history
from adapters.cli.session import (
    EXIT_REJECTED,
    F,
    Session,
    encoder,
    fail,
    json_option,
    opened,
    out,
    parse_time,
    parse_uuid,
    reveal_options,
    revealing,
)
from adapters.demo.tour import tour_commands
from adapters.intake import decode_json
from engine import commands as engine_commands
from engine.errors import GrievanceError
from engine.grievance import Category, Channel, ClaimMode, EscalationReason, Grievance, Rating, Status
from engine.levels import Level
from schemas.export import json_schema
from schemas.results import Accepted, GrievanceView, Rejected, Result


def register(main: click.Group) -> None:
    """Add these commands to the `grievance` group."""
    for command in (report, claim, progress, escalate, resolve, reply, rate, show, tour, schema, submit_json):
        main.add_command(command)


def choice(enum: type[Category | Channel | ClaimMode | EscalationReason | Rating]) -> click.Choice[str]:
    """The values of one of the engine's vocabularies, as an option's choices."""
    return click.Choice([member.value for member in enum])


def command_options(f: F) -> F:
    """Options every command shares: who, when, and the command id that makes a retry safe."""
    f = click.option("--at", "occurred_at", help="When it happened (RFC 3339 with offset); default now.")(f)
    f = click.option("--command-id", help="Client command id; repeat it to retry safely. Default: a new one.")(f)
    f = click.option("--actor", help="Who is doing this (default $GRIEVANCE_ACTOR, else the login name).")(f)
    return json_option(f)


def submit(fields: dict[str, Any], kind: type[engine_commands.Command], as_json: bool) -> None:
    """Validate the fields as a command, apply it as this operator, print the result; exit 1 if it was refused."""
    fields["command_id"] = fields.get("command_id") or str(uuid4())
    if fields.get("occurred_at") is None:
        fields["occurred_at"] = datetime.now(UTC).isoformat()
    with opened() as session:
        fields["actor"] = fields.get("actor") or session.settings.actor
        result: Result
        try:
            command: engine_commands.Command = msgspec.convert(engine_commands.times_read(fields), kind)
        except msgspec.ValidationError as e:
            result = wire.malformed(e)
        else:
            (result,) = session.apply(command.kind, [command])
    print_result(result, as_json)
    if isinstance(result, Rejected):
        sys.exit(EXIT_REJECTED)


def print_result(result: Result, as_json: bool) -> None:
    if as_json:
        click.echo(encoder.encode(result))
    elif isinstance(result, Accepted):
        again = " (a repeat: nothing new stored)" if result.duplicate else ""
        out.print(
            f"{result.kind}: grievance {result.grievance_id} is {result.status} at {result.unit_id} "
            f"({result.level}), version {result.version}{again}"
        )
    else:
        click.echo(f"error: {result.field}: {result.reason} [{result.code}]", err=True)


@click.command()
@click.option(
    "--unit", "unit_id", required=True, help="Unit where it is reported (household, building, grid, community)."
)
@click.option("--category", required=True, type=choice(Category))
@click.option("--title", required=True)
@click.option("--description", required=True)
@click.option("--channel", default="grid_visit", show_default=True, type=choice(Channel))
@click.option("--grievance-id", help="Choose the id (a UUID); default: derived from the command id.")
@click.option("--resident-id", help="The resident who raised it (their name and phone are stored sealed).")
@click.option("--resident-name", default="", help="The resident's name (personal data).")
@click.option("--resident-phone", default="", help="The resident's phone (personal data).")
@command_options
def report(
    as_json: bool,
    grievance_id: str | None,
    resident_id: str | None,
    resident_name: str,
    resident_phone: str,
    **fields: Any,
) -> None:
    """Report a resident's problem at a unit; it waits there to be claimed."""
    if resident_id or resident_name or resident_phone:
        fields["resident"] = {"resident_id": resident_id or "", "name": resident_name, "phone": resident_phone}
    fields["command_id"] = fields.get("command_id") or str(uuid4())
    # Derived from the command id, a retried report lands on the same grievance.
    fields["grievance_id"] = grievance_id or str(Grievance.create_id(fields["command_id"]))
    submit(fields, engine_commands.Report, as_json)


def grievance_argument(f: F) -> F:
    return click.argument("grievance_id")(f)


@click.command()
@grievance_argument
@click.option("--unit", "unit_id", required=True, help="The unit where it waits (guards against a stale view).")
@click.option("--mode", required=True, type=choice(ClaimMode))
@click.option("--claimant", required=True, help="Who takes it on: a member, group or organisation id.")
@command_options
def claim(as_json: bool, **fields: Any) -> None:
    """Claim a waiting grievance at its unit, as an organisation, a group or a member."""
    submit(fields, engine_commands.Claim, as_json)


@click.command()
@grievance_argument
@click.option("--note", required=True)
@command_options
def progress(as_json: bool, **fields: Any) -> None:
    """Record progress on a claimed grievance."""
    submit(fields, engine_commands.RecordProgress, as_json)


@click.command()
@grievance_argument
@click.option("--to", "to_unit_id", help="The unit one step up (checked); default: the parent.")
@click.option("--reason", default="requested", show_default=True, type=choice(EscalationReason))
@click.option("--note", default="")
@command_options
def escalate(as_json: bool, **fields: Any) -> None:
    """Escalate a grievance exactly one step up the chain."""
    submit(fields, engine_commands.Escalate, as_json)


@click.command()
@grievance_argument
@click.option("--summary", required=True, help="What was done.")
@command_options
def resolve(as_json: bool, **fields: Any) -> None:
    """Close a claimed grievance as solved."""
    submit(fields, engine_commands.Resolve, as_json)


@click.command()
@grievance_argument
@click.option("--reason", required=True, help="Why it cannot be solved here.")
@click.option("--answer", required=True, help="What the resident was told.")
@command_options
def reply(as_json: bool, **fields: Any) -> None:
    """Close a claimed grievance unsolved, with a reply to the resident."""
    submit(fields, engine_commands.Reply, as_json)


@click.command()
@grievance_argument
@click.option("--rating", required=True, type=choice(Rating))
@click.option("--comment", default="")
@command_options
def rate(as_json: bool, **fields: Any) -> None:
    """Record the resident's rating; dissatisfied reopens the grievance."""
    submit(fields, engine_commands.Rate, as_json)


@click.command()
@grievance_argument
@click.option("--version", "version", type=click.IntRange(min=1), help="The state as it stood at this version.")
@click.option("--at", "at", help="The state as it stood at this time (RFC 3339 with offset).")
@click.option(
    "--clock",
    type=click.Choice(["recorded", "occurred"]),
    default="recorded",
    show_default=True,
    help="With --at: when events were stored, or when they happened in the field.",
)
@reveal_options
@json_option
def show(
    grievance_id: str, version: int | None, at: str | None, clock: str, reveal: bool, reason: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """A grievance's current state, or its state at a past version or time."""
    if version is not None and at is not None:
        fail("give --version or --at, not both")
    gid = parse_uuid(grievance_id)
    with opened() as session:
        chain = session.chain
        try:
            grievance = (
                chain.grievance_at(gid, parse_time("at", at), clock=clock)
                if at
                else chain.grievance(gid, version=version)
            )
        except GrievanceError as e:
            fail(str(e))
        view = wire.view(grievance, chain.clock(), reveal=revealing(session, gid, reveal, reason, "show"))
    if as_json:
        click.echo(encoder.encode(view))
        return
    print_view(view, session)


def print_view(view: GrievanceView, session: Session) -> None:
    zone = session.settings.display_zone
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    unit = session.chain.chart.unit(view.unit_id)
    rows: list[tuple[str, Any]] = [
        ("grievance", view.grievance_id),
        ("version", view.version),
        ("status", view.status),
        ("waits at" if Status(view.status).is_open else "closed at", f"{unit.name} ({view.unit_id})"),
        ("level", f"{view.level} · {Level(view.level).chinese}"),
        ("category", view.category),
        ("title", view.title),
        ("description", view.description),
        (
            "reported",
            f"{zone.minute(view.reported_at)} by {view.reported_by} at {view.reported_unit} via {view.channel}",
        ),
        ("path", " → ".join(view.path)),
    ]
    if view.claimant and view.claimed_at:
        rows.append(("claimed", f"by {view.claimant} ({view.claim_mode}) at {zone.minute(view.claimed_at)}"))
    if view.due_at:
        rows.append(("due", zone.minute(view.due_at) + ("  OVERDUE" if view.overdue else "")))
    if view.closing_text:
        rows.append(("resolution" if view.status == "resolved" else "reply", view.closing_text))
    if view.rating:
        rows.append(("rating", view.rating))
    if view.reopen_count:
        rows.append(("reopened", f"{view.reopen_count} time(s)"))
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)


@click.command()
def tour() -> None:
    """Play one grievance through the chain on the configured store, then print its history."""
    with opened() as session:
        chart = session.chain.chart
        household = next(u for u in chart if u.level is Level.MEMBER_HOUSEHOLD)
        building = chart.parent_of(household.id)
        assert building is not None
        for what, command in tour_commands(household.id, building.id):
            (result,) = session.apply("tour", [command])
            out.print(what, style="bold")
            print_result(result, as_json=False)
        gid = command.grievance_id
        envelopes = session.trail().history(gid)
    out.print(f"\nIts history, as an auditor sees it (grievance history {gid}):")
    print_history(gid, envelopes, session.settings.display_zone)


@click.command()
def schema() -> None:
    """Print the JSON Schema of every command, the event envelope and the results."""
    click.echo(json.dumps(json_schema(Command=engine_commands.Command), ensure_ascii=False, indent=2))


@click.command("submit")
@json_option
def submit_json(as_json: bool) -> None:
    """Apply JSON commands read from stdin (one command, or a list applied as one batch)."""
    data = sys.stdin.buffer.read()
    with opened() as session:
        decoded = decode_json(data)
        results = [decoded] if isinstance(decoded, Rejected) else session.apply("submit", decoded)
    for result in results:
        print_result(result, as_json)
    if any(isinstance(r, Rejected) for r in results):
        sys.exit(EXIT_REJECTED)
