"""The `grievance` command line: every use case of the chain, readable or as JSON."""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any, get_args
from uuid import uuid4

import click
import msgspec
from rich.table import Table

from adapters import cli_audit, cli_check, cli_http, cli_kafka, cli_views, wire
from adapters.audit_trail import AuditTrail
from adapters.cli_audit import print_history
from adapters.cli_support import (
    EXIT_REJECTED,
    F,
    encoder,
    fail,
    json_option,
    opened_chain,
    out,
    parse_time,
    parse_uuid,
)
from adapters.intake import Intake
from adapters.tour import tour_commands
from engine.errors import GrievanceError
from engine.service_chain import ServiceChain
from schemas import commands as wire_commands
from schemas.common import CategoryName, ChannelName, ClaimModeName, EscalationReasonName, RatingName
from schemas.export import json_schema
from schemas.results import Accepted, GrievanceView, Rejected, Result


def command_options(f: F) -> F:
    """Options every command shares: who, when, and the command id that makes a retry safe."""
    f = click.option("--at", "occurred_at", help="When it happened (RFC 3339 with offset); default now.")(f)
    f = click.option("--command-id", help="Client command id; repeat it to retry safely. Default: a new one.")(f)
    f = click.option(
        "--actor",
        default=lambda: os.environ.get("GRIEVANCE_ACTOR") or getpass.getuser(),
        show_default="$USER",
        help="Who is doing this (default $GRIEVANCE_ACTOR, else the login name).",
    )(f)
    return json_option(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="grievance-chain")
def main() -> None:
    """The party-building service chain's grievance engine (党建服务链条).

    Settings come from the environment: GRIEVANCE_DATABASE_URL (default sqlite:///grievances.db;
    or postgresql://user@host/db), GRIEVANCE_CHART, GRIEVANCE_DURABILITY (full, normal, off),
    GRIEVANCE_LIMITS_HOURS, GRIEVANCE_LOG_FORMAT.
    """


def submit(fields: dict[str, Any], kind: type[wire_commands.CommandBase], as_json: bool) -> None:
    """Validate the fields as a wire command, apply it, print the result; exit 1 if it was refused."""
    fields["command_id"] = fields.get("command_id") or str(uuid4())
    if fields.get("occurred_at") is None:
        fields["occurred_at"] = datetime.now(UTC).isoformat()
    result: Result
    try:
        command = msgspec.convert(fields, kind)
    except msgspec.ValidationError as e:
        result = wire.malformed(e)
    else:
        with opened_chain() as chain:
            result = Intake(chain).submit_one(command)
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


@main.command()
@click.option(
    "--unit", "unit_id", required=True, help="Unit where it is reported (household, building, grid, community)."
)
@click.option("--category", required=True, type=click.Choice(get_args(CategoryName)))
@click.option("--title", required=True)
@click.option("--description", required=True)
@click.option("--channel", default="grid_visit", show_default=True, type=click.Choice(get_args(ChannelName)))
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
    fields["grievance_id"] = grievance_id or str(wire.report_grievance_id(fields["command_id"]))
    submit(fields, wire_commands.Report, as_json)


def grievance_argument(f: F) -> F:
    return click.argument("grievance_id")(f)


@main.command()
@grievance_argument
@click.option("--unit", "unit_id", required=True, help="The unit where it waits (guards against a stale view).")
@click.option("--mode", required=True, type=click.Choice(get_args(ClaimModeName)))
@click.option("--claimant", required=True, help="Who takes it on: a member, group or organisation id.")
@command_options
def claim(as_json: bool, **fields: Any) -> None:
    """Claim a waiting grievance at its unit, as an organisation, a group or a member."""
    submit(fields, wire_commands.Claim, as_json)


@main.command()
@grievance_argument
@click.option("--note", required=True)
@command_options
def progress(as_json: bool, **fields: Any) -> None:
    """Record progress on a claimed grievance."""
    submit(fields, wire_commands.RecordProgress, as_json)


@main.command()
@grievance_argument
@click.option("--to", "to_unit_id", help="The unit one step up (checked); default: the parent.")
@click.option("--reason", default="requested", show_default=True, type=click.Choice(get_args(EscalationReasonName)))
@click.option("--note", default="")
@command_options
def escalate(as_json: bool, **fields: Any) -> None:
    """Escalate a grievance exactly one step up the chain."""
    submit(fields, wire_commands.Escalate, as_json)


@main.command()
@grievance_argument
@click.option("--summary", required=True, help="What was done.")
@command_options
def resolve(as_json: bool, **fields: Any) -> None:
    """Close a claimed grievance as solved."""
    submit(fields, wire_commands.Resolve, as_json)


@main.command()
@grievance_argument
@click.option("--reason", required=True, help="Why it cannot be solved here.")
@click.option("--answer", required=True, help="What the resident was told.")
@command_options
def reply(as_json: bool, **fields: Any) -> None:
    """Close a claimed grievance unsolved, with a reply to the resident."""
    submit(fields, wire_commands.Reply, as_json)


@main.command()
@grievance_argument
@click.option("--rating", required=True, type=click.Choice(get_args(RatingName)))
@click.option("--comment", default="")
@command_options
def rate(as_json: bool, **fields: Any) -> None:
    """Record the resident's rating; dissatisfied reopens the grievance."""
    submit(fields, wire_commands.Rate, as_json)


@main.command()
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
@json_option
def show(grievance_id: str, version: int | None, at: str | None, clock: str, as_json: bool) -> None:
    """A grievance's current state, or its state at a past version or time."""
    if version is not None and at is not None:
        fail("give --version or --at, not both")
    gid = parse_uuid(grievance_id)
    with opened_chain() as chain:
        try:
            grievance = (
                chain.grievance_at(gid, parse_time("at", at), clock=clock)
                if at
                else chain.grievance(gid, version=version)
            )
        except GrievanceError as e:
            fail(str(e))
        view = wire.view(grievance, chain.clock())
    if as_json:
        click.echo(encoder.encode(view))
        return
    print_view(view, chain)


def print_view(view: GrievanceView, chain: ServiceChain) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    unit = chain.chart.unit(view.unit_id)
    rows: list[tuple[str, Any]] = [
        ("grievance", view.grievance_id),
        ("version", view.version),
        ("status", view.status),
        ("waits at" if view.status in ("waiting", "claimed") else "closed at", f"{unit.name} ({view.unit_id})"),
        ("level", f"{view.level} · {unit.level.chinese}"),
        ("category", view.category),
        ("title", view.title),
        ("description", view.description),
        (
            "reported",
            f"{view.reported_at:%Y-%m-%d %H:%M %Z} by {view.reported_by} at {view.reported_unit} via {view.channel}",
        ),
        ("path", " → ".join(view.path)),
    ]
    if view.claimant:
        rows.append(("claimed", f"by {view.claimant} ({view.claim_mode}) at {view.claimed_at:%Y-%m-%d %H:%M %Z}"))
    if view.due_at:
        rows.append(("due", f"{view.due_at:%Y-%m-%d %H:%M %Z}" + ("  OVERDUE" if view.overdue else "")))
    if view.closing_text:
        rows.append(("resolution" if view.status == "resolved" else "reply", view.closing_text))
    if view.rating:
        rows.append(("rating", view.rating))
    if view.reopen_count:
        rows.append(("reopened", f"{view.reopen_count} time(s)"))
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)


@main.command()
def tour() -> None:
    """Play one grievance through the chain on the configured store, then print its history."""
    with opened_chain() as chain:
        household = next(u for u in chain.chart if u.level == "member_household")
        building = chain.chart.parent_of(household.id)
        assert building is not None
        intake = Intake(chain)
        for what, command in tour_commands(household.id, building.id):
            result = intake.submit_one(command)
            out.print(what, style="bold")
            print_result(result, as_json=False)
        gid = command.grievance_id
        envelopes = AuditTrail(chain).history(gid)
    out.print(f"\nIts history, as an auditor sees it (grievance history {gid}):")
    print_history(gid, envelopes)


@main.command()
def schema() -> None:
    """Print the JSON Schema of every command, the event envelope and the results."""
    click.echo(json.dumps(json_schema(), ensure_ascii=False, indent=2))


@main.command("submit")
@json_option
def submit_json(as_json: bool) -> None:
    """Apply JSON commands read from stdin (one command, or a list applied as one batch)."""
    data = sys.stdin.buffer.read()
    with opened_chain() as chain:
        results = Intake(chain).submit_json(data)
    for result in results:
        print_result(result, as_json)
    if any(isinstance(r, Rejected) for r in results):
        sys.exit(EXIT_REJECTED)


cli_views.register(main)
cli_kafka.register(main)
cli_audit.register(main)
cli_http.register(main)
main.add_command(cli_check.check)


if __name__ == "__main__":
    main()
