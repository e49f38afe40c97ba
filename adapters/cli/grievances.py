"""The grievances' verbs: report, claim, progress, escalate, resolve, reply, rate, show, submit, tour, schema."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, get_args
from uuid import uuid4

import click
import msgspec
from rich.table import Table

from adapters import composition, wire
from adapters.cli.audit import print_history
from adapters.cli.session import (
    EXIT_BROKEN,
    EXIT_PARTLY_REFUSED,
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
    refuse,
    reveal_options,
    revealing,
)
from adapters.demo.tour import tour_commands
from adapters.settings import Settings
from engine import commands as engine_commands
from engine.errors import BrokenHistory, GrievanceError
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


def fill_in(fields: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What an operator at the terminal may leave out: the actor ($GRIEVANCE_ACTOR, else the login name), the time
    (now) and a command id (a new one); a report's grievance id derives from its command id, so a retry finds it."""
    fields["command_id"] = fields.get("command_id") or str(uuid4())
    if fields.get("occurred_at") is None:
        fields["occurred_at"] = datetime.now(UTC).isoformat()
    fields["actor"] = fields.get("actor") or settings.actor
    if fields.get("kind") == "report" and not fields.get("grievance_id") and isinstance(fields["command_id"], str):
        fields["grievance_id"] = str(Grievance.create_id(fields["command_id"]))
    return fields


def submit(
    fields: dict[str, Any], kind: type[engine_commands.Command], as_json: bool, *, id_alone: bool = False,
    detail: str = "",
) -> None:  # fmt: skip
    """Validate the fields as a command, apply it as this operator, print the result; exit 1 if it was refused.
    Plain output is the readable line (with `detail`, what the command said), or with `id_alone` the grievance id
    alone on stdout, for a script's `$(...)`, and the readable line on stderr."""
    with opened() as session:
        fill_in(fields, session.settings)
        result: Result
        try:
            command: engine_commands.Command = msgspec.convert(engine_commands.times_read(fields), kind)
        except msgspec.ValidationError as e:
            result = wire.malformed(e)
        else:
            (result,) = session.apply(command.kind, [command])
    if as_json:
        print_result(result, as_json=True)
    elif isinstance(result, Accepted):
        click.echo(result.grievance_id if id_alone else readable(result, detail))
        if id_alone:
            click.echo(readable(result, detail), err=True)
    else:
        print_result(result, as_json=False)
    if isinstance(result, Rejected):
        # A command on a grievance whose stored history is broken exits as `verify` does on a broken link.
        sys.exit(EXIT_BROKEN if result.code == BrokenHistory.code else EXIT_REJECTED)


def readable(result: Accepted, detail: str = "") -> str:
    """An applied command's line for a person: what it said (`detail`) and where the grievance stands now."""
    again = " (a repeat: nothing new stored)" if result.duplicate else ""
    receipt = f"; the resident's receipt: {result.receipt} (their page: /r/{result.receipt})" if result.receipt else ""
    return (
        f"{result.kind}: grievance {result.grievance_id}{detail} is {result.status} at {result.unit_id} "
        f"({result.level}), version {result.version}{again}{receipt}"
    )


def refusal(result: Rejected) -> str:
    """A refused command's line: the field, the reason and the stable code."""
    return f"{result.field}: {result.reason} [{result.code}]"


def print_result(result: Result, as_json: bool, prefix: str = "") -> None:
    """One command's result: its message with `as_json`, else a line on stdout (applied); a refusal is also its
    one line on stderr, with `--json` too, so a script's log says why whatever it asked stdout for."""
    if as_json:
        click.echo(encoder.encode(result))
        if isinstance(result, Rejected):
            click.echo(f"error: {prefix}{refusal(result)}", err=True)
    elif isinstance(result, Accepted):
        out.print(prefix + readable(result))
    else:
        click.echo(f"error: {prefix}{refusal(result)}", err=True)


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
    """Report a resident's problem at a unit; it waits there to be claimed.

    Prints the grievance id alone (so that ID=$(grievance report ...) works), the readable line on stderr.
    """
    if resident_id or resident_name or resident_phone:
        fields["resident"] = {"resident_id": resident_id or "", "name": resident_name, "phone": resident_phone}
    # Without one, the grievance id derives from the command id (fill_in), so a retried report finds it.
    fields["kind"], fields["grievance_id"] = "report", grievance_id
    # The id alone on stdout, so that `ID=$(grievance report ...)` works; the readable line goes to stderr.
    submit(fields, engine_commands.Report, as_json, id_alone=True)


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
@click.option("--given-by", type=click.Choice(["callback", "resident"]), default="callback", show_default=True,
              help="callback: the office called the resident back (回访), and --actor is the caller; resident: "
              "an import of a rating the resident gave with their receipt.")  # fmt: skip
@command_options
def rate(as_json: bool, **fields: Any) -> None:
    """Record the resident's rating; dissatisfied reopens the grievance. The caller may not be anyone who
    reported, claimed or worked on it."""
    submit(fields, engine_commands.Rate, as_json, detail=f" rated {fields['rating']},")


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
        fail("version: give --version or --at, not both")
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
            refuse(e)
        view = wire.view(grievance, chain.clock(), reveal=revealing(session, gid, reveal, reason, "show"),
                         roster=composition.roster_of(chain))  # fmt: skip
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
        if (then := view.claimant_then) is not None:
            rows.append(("claimant then", f"{then.name}, {then.kind} registered at {then.unit_id}"))
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
    """Play one grievance through the chain on the configured store, with the messages its resident is sent
    (through the configured sender: this console by default), then print its history."""
    with opened() as session:
        chart = session.chain.chart
        household = next(u for u in chart if u.level is Level.MEMBER_HOUSEHOLD)
        building = chart.parent_of(household.id)
        assert building is not None
        notifier = composition.build_notifier(session.settings, session.chain)
        for what, command in tour_commands(household.id, building.id):
            (result,) = session.apply("tour", [command])
            out.print(what, style="bold")
            print_result(result, as_json=False)
            notifier.deliver_once()
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
    """Apply JSON commands read from stdin: one command, or a list applied as one batch.

    What a single verb fills in, this does too for each command that leaves it out: the actor
    ($GRIEVANCE_ACTOR, else the login name), occurred_at (now), a command id, and a report's grievance id
    (from its command id). If any command is malformed, none is applied and every malformed one is named
    (exit 1). Otherwise the batch is one transaction of the commands the rules accept: each refused one
    stores nothing and is named; exit 0 if all were applied, 1 if none, 5 if some were refused.
    """
    data = sys.stdin.buffer.read()
    with opened() as session:
        items = batch_items(data)
        if isinstance(items, Rejected):
            print_result(items, as_json, "input: ")
            sys.exit(EXIT_REJECTED)
        decoded = [decode_command(fill_in(dict(item), session.settings)) if isinstance(item, dict) else
                   [not_an_object()] for item in items]  # fmt: skip
        if not items:
            print_result(not_an_object("the list holds no commands"), as_json, "input: ")
            sys.exit(EXIT_REJECTED)
        malformed = [(i, msgspec.structs.replace(r, command_id=items[i].get("command_id") if named(items[i]) else None))
                     for i, c in enumerate(decoded) if isinstance(c, list) for r in c]  # fmt: skip
        for i, r in malformed:
            print_result(r, as_json, f"command {i}{named(items[i])}: ")
        if malformed:
            sys.exit(EXIT_REJECTED)
        results = session.apply("submit", [c for c in decoded if not isinstance(c, list)])
    for i, result in enumerate(results):
        print_result(result, as_json, f"command {i}{named(items[i])}: ")
    refused = sum(isinstance(r, Rejected) for r in results)
    if refused:
        sys.exit(EXIT_REJECTED if refused == len(results) else EXIT_PARTLY_REFUSED)


def batch_items(data: bytes) -> list[Any] | Rejected:
    """The JSON objects of the input, one command or a list of them, or the refusal of input that is neither."""
    try:
        parsed = msgspec.json.decode(data)
    except wire.UNDECODABLE as e:
        return wire.malformed(e)
    return parsed if isinstance(parsed, list) else [parsed]


def named(item: Any) -> str:
    """The command id an input command gave itself, to name it by beside its place in the batch."""
    given = item.get("command_id") if isinstance(item, dict) else None
    return f" ({given})" if isinstance(given, str) and given else ""


def not_an_object(reason: str = "a command is a JSON object with a kind") -> Rejected:
    return Rejected(command_id=None, grievance_id=None, code="malformed", field="$", reason=reason)


KINDS = {str(k.__struct_config__.tag): k for k in get_args(engine_commands.Command)}


def decode_command(item: dict[str, Any]) -> engine_commands.Command | list[Rejected]:
    """One command, decoded exactly as every channel decodes it, or every required field it lacks (msgspec
    names only the first), or the first value it refuses."""
    named = item.get("kind")
    kind = KINDS.get(named) if isinstance(named, str) else None  # a list or an object names no kind
    if kind is not None:
        present = set(item)
        missing = [f.encode_name for f in msgspec.structs.fields(kind) if f.required and f.encode_name not in present]
        if missing:
            return [Rejected(command_id=None, grievance_id=None, code="malformed", field=name,
                             reason=f"Object missing required field `{name}`") for name in missing]  # fmt: skip
    try:
        return engine_commands.command_decoder.decode(encoder.encode(item))
    except wire.UNDECODABLE as e:
        return [wire.malformed(e)]
