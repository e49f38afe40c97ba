"""The roster's verbs: `grievance roster import|add|move|leave|list|show|forget`, and its year's readings
`stars`, `service` (a workplace's members, 双认可) and `year-end` (a street's organisations). People's names are
masked when shown, unless revealed with a reason (recorded for auditors)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import click
import msgspec
from rich.table import Table

from adapters import composition, wire
from adapters.cli.session import (
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
    refuse,
)
from adapters.roster_file import BadRow, read_roster_file
from adapters.roster_views import entry_view, result_of
from engine.errors import GrievanceError
from engine.roster import Kind, RosterEntry, entry_uuid
from engine.roster_book import RosterBook
from engine.roster_commands import Join, RosterCommand, roster_command_decoder
from projections.stars import StarThresholds, YearOfPoints, yearly_points
from projections.year_end import Contribution, street_year_end, workplace_service
from schemas.roster import RollView, RosterAccepted, RosterRejected, RosterResult

# Rows a transaction of an import holds.
IMPORT_BATCH = 500


def register(main: click.Group) -> None:
    """Add the `roster` group to the `grievance` group."""
    main.add_command(roster)


@click.group()
def roster() -> None:
    """The roster (花名册): the members, groups, organisations, grid workers and chiefs on the chain. Claims at a
    unit that keeps a roster are checked against it (GRIEVANCE_ROSTER_CLAIMS=required: at every unit)."""


def _book(session: Session) -> RosterBook:
    return composition.roster_of(session.chain)


def common_options(f: F) -> F:
    """Who, when, and the command id that makes a retry safe."""
    f = click.option("--at", "occurred_at", help="When it happened (RFC 3339 with offset); default now.")(f)
    f = click.option("--command-id", help="Client command id; repeat it to retry safely. Default: a new one.")(f)
    f = click.option("--actor", help="Who is doing this (default $GRIEVANCE_ACTOR, else the login name).")(f)
    return json_option(f)


def _apply(fields: dict[str, Any], as_json: bool) -> None:
    """Decode the fields as a roster command, apply it as this operator, print the result; exit 1 if refused."""
    with opened() as session:
        fields = {k: v for k, v in fields.items() if v is not None}
        fields["command_id"] = fields.get("command_id") or str(uuid4())
        fields["occurred_at"] = fields.get("occurred_at") or datetime.now(UTC).isoformat()
        fields["actor"] = fields.get("actor") or session.settings.actor
        result: RosterResult
        command: RosterCommand | None = None
        try:
            command = roster_command_decoder.convert(fields)
        except wire.UNDECODABLE as e:
            bad = wire.malformed(e)
            result = RosterRejected(command_id=fields["command_id"], entry_id=fields.get("entry_id"), code=bad.code,
                                    field=bad.field.removeprefix("$."), reason=bad.reason)  # fmt: skip
        else:
            (outcome,) = session.apply_roster(f"roster {command.verb}", [command])
            result = result_of(command, outcome)
    _print(result, as_json)
    if isinstance(result, RosterRejected):
        sys.exit(EXIT_REJECTED)


def _print(result: RosterResult, as_json: bool) -> None:
    if as_json:
        click.echo(encoder.encode(result))
    if isinstance(result, RosterAccepted):
        if not as_json:
            again = " (a repeat: nothing new stored)" if result.duplicate else ""
            where = (
                f"on the roster at {result.unit_id}"
                if result.on_roster
                else f"off the roster (was at {result.unit_id})"
            )
            click.echo(f"{result.verb}: {result.entry_id} is {where}, version {result.version}{again}")
        return
    row = f"row {result.row}: " if result.row is not None else ""
    click.echo(f"error: {row}{result.field}: {result.reason} [{result.code}]", err=True)


@roster.command("add")
@click.argument("entry_id")
@click.option("--kind", required=True, type=click.Choice([k.value for k in Kind]), help="What the entry is.")
@click.option("--unit", "unit_id", required=True, help="The unit of the chart it registers at.")
@click.option("--name", required=True, help="The person's or body's name (a person's is sealed, and masked).")
@click.option("--workplace", "workplace_id", help="A member's workplace organisation, on the roster already.")
@click.option("--household", "households", multiple=True, help="A household a chief covers (repeat the option).")
@click.option("--representative", "representatives", multiple=True,
              help="A person on the roster who acts for a body (repeat the option).")  # fmt: skip
@common_options
def add(as_json: bool, households: Sequence[str], representatives: Sequence[str], **fields: Any) -> None:
    """Put a person or body on the roster (or back on it, under the id it had)."""
    _apply({"verb": "join", **fields, "households": list(households), "representatives": list(representatives)},
           as_json)  # fmt: skip


@roster.command("move")
@click.argument("entry_id")
@click.option("--to", "to_unit_id", required=True, help="The unit the registration moves to.")
@click.option("--household", "households", multiple=True, help="A chief's households from now on (repeat).")
@common_options
def move(as_json: bool, households: Sequence[str], **fields: Any) -> None:
    """Move an entry's registration to another unit."""
    _apply({"verb": "move", **fields, "households": list(households) or None}, as_json)


@roster.command("leave")
@click.argument("entry_id")
@click.option("--reason", default="", help="Why the entry leaves the roster.")
@common_options
def leave(as_json: bool, **fields: Any) -> None:
    """Take an entry off the roster; its id stays its own."""
    _apply({"verb": "leave", **fields}, as_json)


@roster.command("represent")
@click.argument("entry_id")
@click.option("--representative", "representatives", multiple=True,
              help="A person on the roster who acts for the body from now on (repeat the option).")  # fmt: skip
@click.option("--nobody", is_flag=True, help="Nobody acts for the body from now on (it claims no more until named).")
@common_options
def represent(as_json: bool, representatives: Sequence[str], nobody: bool, **fields: Any) -> None:
    """Name who acts for a body (a party group or organisation, a stationed unit) from now on, in place of those
    named before: its claims are sent by one of them."""
    if nobody == bool(representatives):
        with opened():  # a broken setting or store is named first, as by every roster verb
            fail("representatives: name who acts for the body (--representative, repeated), or --nobody")
    _apply({"verb": "represent", **fields, "representatives": list(representatives)}, as_json)


@roster.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--at", "occurred_at", help="When the rows joined, unless a row says (RFC 3339); default now.")
@click.option("--actor", help="Who records them (default $GRIEVANCE_ACTOR, else the login name).")
@json_option
def import_file(file: Path, occurred_at: str | None, actor: str | None, as_json: bool) -> None:
    """Import a roster file (CSV with a header row, or .toml with [[entry]] tables): good rows are stored, each bad
    one is a line naming its row and field; exit 5 if any row was refused."""
    at = parse_time("at", occurred_at) if occurred_at else datetime.now(UTC)
    with opened() as session:
        rows = read_roster_file(file, actor=actor or session.settings.actor, at=at)
        results: list[RosterResult] = []
        for start in range(0, len(rows), IMPORT_BATCH):
            chunk = rows[start : start + IMPORT_BATCH]
            joins = [(n, row) for n, row in chunk if isinstance(row, Join)]
            outcomes = iter(session.apply_roster("roster import", [row for _, row in joins]) if joins else [])
            for number, row in chunk:
                if isinstance(row, BadRow):
                    results.append(RosterRejected(command_id=None, entry_id=None, code="malformed", field=row.field,
                                                  reason=row.reason, row=number))  # fmt: skip
                else:
                    results.append(result_of(row, next(outcomes), row=number))
    results.sort(key=lambda r: r.row or 0 if isinstance(r, RosterRejected) else 0)
    refused = [r for r in results if isinstance(r, RosterRejected)]
    for r in refused:
        _print(r, as_json=False)
    repeats = sum(1 for r in results if isinstance(r, RosterAccepted) and r.duplicate)
    stored = len(results) - len(refused) - repeats
    summary = {"rows": len(results), "stored": stored, "repeats": repeats, "refused": len(refused)}
    if as_json:
        click.echo(encoder.encode({**summary, "results": results}))
    else:
        click.echo(f"imported {file.name}: {stored:,} stored, {repeats:,} already on the roster (repeats), "
                   f"{len(refused):,} refused, of {len(results):,} rows")  # fmt: skip
    if refused:
        sys.exit(EXIT_PARTLY_REFUSED)


@roster.command("list")
@click.option("--unit", "unit_id", help="Only this unit's roster (default: every unit's).")
@click.option("--at", "at", help="The roster as it stood at this time (RFC 3339): who could claim there then.")
@click.option("--below", is_flag=True, help="With --unit: the units below it too.")
@json_option
def list_roster(unit_id: str | None, at: str | None, below: bool, as_json: bool) -> None:
    """Who is on the roster, unit by unit, names masked."""
    moment = parse_time("at", at) if at else None
    with opened() as session:
        book, chart, zone = _book(session), session.chain.chart, session.settings.display_zone
        try:
            units = [u.id for u in chart.walk(unit_id)] if (below or unit_id is None) else [chart.unit(unit_id).id]
        except GrievanceError as unknown:
            refuse(unknown)
        rolls = book.rolls(units)
        standing = {u: rolls[u].on_roll(moment) for u in units if u in rolls}
        entries = {found.entry_id: found for found in book.entries(eid for on in standing.values() for eid in on)}
    views = [
        RollView(unit_id=u, at=moment, keeps_roster=True,
                 entries=[entry_view(entries[e]) for e in sorted(on) if e in entries])
        for u, on in standing.items()
    ]  # fmt: skip
    if unit_id is not None and not below and not views:
        views = [RollView(unit_id=unit_id, at=moment, keeps_roster=False, entries=[])]
    if as_json:
        click.echo(encoder.encode(views))
        return
    table = Table("unit", "entry", "kind", "name", "workplace", "households / representatives")
    for view in views:
        for e in view.entries:
            table.add_row(view.unit_id, e.entry_id, e.kind_label, e.name, e.workplace_id or "",
                          ", ".join(e.households or e.representatives))  # fmt: skip
    out.print(table)
    count = sum(len(v.entries) for v in views)
    as_of = f" as of {zone.minute(moment)}" if moment else ""
    kept = "" if any(v.keeps_roster for v in views) else " (no roster kept here: claims are not checked yet)"
    out.print(f"{count:,} on the roster of {len(views):,} unit{'s' if len(views) != 1 else ''}{as_of}{kept}")


@roster.command("show")
@click.argument("entry_id")
@click.option("--reveal", is_flag=True, help="Show a person's name whole.")
@click.option("--reason", help="Why the name must be seen whole (recorded for auditors).")
@json_option
def show(entry_id: str, reveal: bool, reason: str | None, as_json: bool) -> None:
    """One entry: what it is, where it is registered, and its history."""
    with opened() as session:
        book = _book(session)
        try:
            entry = book.entry(entry_id)
        except GrievanceError as e:
            refuse(e)
        if reveal:
            if not reason or not reason.strip():
                fail("reason: say why the person's name must be seen whole (--reason); it is recorded")
            disclosures = composition.build_disclosures(session.chain)
            disclosures.record(session.principal, entry_uuid(entry_id), channel="cli: roster show",
                               reason=reason.strip())  # fmt: skip
        history = _history(session, entry)
        zone = session.settings.display_zone
    view = entry_view(entry, reveal=reveal)
    if as_json:
        click.echo(encoder.encode({"entry": view, "history": history}))
        return
    where = "on the roster at" if view.on_roster else "off the roster, last at"
    out.print(f"{view.entry_id}: {view.kind_label} {view.name}, {where} {view.unit_id} ({view.level})")
    if view.workplace_id:
        out.print(f"workplace: {view.workplace_id}")
    if view.households:
        out.print(f"households: {', '.join(view.households)}")
    if view.representatives:
        out.print(f"acted for by: {', '.join(view.representatives)}")
    for line in history:
        when = zone.second(line["occurred_at"])
        out.print(f"  v{line['version']} {when} {line['event']} by {line['actor']}{line['detail']}")


def _history(session: Session, entry: RosterEntry) -> list[dict[str, Any]]:
    lines = []
    for stored in session.chain.recorder.select_events(entry.id):
        event: Any = session.chain.sealed_mapper().to_domain_event(stored)
        detail = ""
        if isinstance(event, RosterEntry.Joined):
            detail = f" at {event.unit_id}"
        elif isinstance(event, RosterEntry.Moved):
            detail = f" from {event.from_unit} to {event.to_unit}"
        elif isinstance(event, RosterEntry.Left):
            detail = f" from {event.from_unit}" + (f": {event.reason}" if event.reason else "")
        elif isinstance(event, RosterEntry.Rejoined):
            detail = f" at {event.unit_id}"
        elif isinstance(event, RosterEntry.RepresentativesNamed):
            detail = f": {', '.join(event.representatives) or 'nobody'}"
        lines.append({"version": event.originator_version, "occurred_at": event.occurred_at.isoformat(),
                      "event": getattr(type(event), "label", type(event).__name__), "actor": event.actor,
                      "detail": detail})  # fmt: skip
    return lines


@roster.command("stars")
@click.option("--year", type=click.IntRange(2000, 2100), required=True, help="The year whose points are counted.")
@click.option("--unit", "unit_id", help="Only those registered at this unit or below it.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Most points first.")
@json_option
def stars(year: int, unit_id: str | None, limit: int, as_json: bool) -> None:
    """Star ratings (评星定级) from the year's volunteer points, member by member and body by body (thresholds:
    GRIEVANCE_STAR_THRESHOLDS, default 10,30,60,100,150); names masked."""
    with opened() as session:
        chain, book, thresholds = session.chain, _book(session), session.settings.star_thresholds
        if unit_id is not None:
            _unit_or_refuse(session, unit_id)
        year_of, unreadable = _year_of(session, year)
        found = {e.entry_id: e for e in book.entries(y.claimant for y in year_of)}
        below = {u.id for u in chain.chart.walk(unit_id)} if unit_id else None
    rows: list[dict[str, Any]] = []
    for y in year_of:
        entry = found.get(y.claimant)
        if below is not None and (entry is None or entry.unit_id not in below):
            continue
        view = entry_view(entry) if entry else None
        rows.append({"entry_id": y.claimant, "mode": y.mode, "on_roster": view is not None,
                     "kind": view.kind if view else None, "name": view.name if view else None,
                     "unit_id": view.unit_id if view else None, "points": y.points,
                     "stars": thresholds.stars(y.points), **dict(y.counts)})  # fmt: skip
    rows = rows[:limit]
    if as_json:
        click.echo(encoder.encode({"year": year, "thresholds": list(thresholds.points), "claimants": rows}))
        return
    table = Table("entry", "kind", "name", "unit", "points", "stars", "claims", "resolved")
    for r in rows:
        table.add_row(r["entry_id"], r["kind"] or "(not on the roster)", r["name"] or "", r["unit_id"] or "",
                      str(r["points"]), "★" * r["stars"] or "-", str(r.get("claims", 0)),
                      str(r.get("resolved", 0)))  # fmt: skip
    out.print(table)
    out.print(f"{year}: thresholds {', '.join(map(str, thresholds.points))} points for 1 to "
              f"{len(thresholds.points)} stars" + _passed_by(unreadable))  # fmt: skip


def _year_of(session: Session, year: int) -> tuple[list[YearOfPoints], int]:
    """The year's points of every claimant, read from the chain's events in log order, and how many events could
    not be read (each passed by, as the views set one aside)."""
    chain, mapper, unreadable = session.chain, session.chain.sealed_mapper(), [0]

    def events() -> Iterator[Any]:
        position = 0
        while page := chain.recorder.select_notifications(start=position + 1, limit=5000):
            for stored in page:
                try:
                    yield mapper.to_domain_event(stored)
                except Exception:
                    unreadable[0] += 1
            position = page[-1].id

    return yearly_points(events(), year), unreadable[0]


def _passed_by(unreadable: int) -> str:
    return f"; {unreadable} unreadable events passed by" if unreadable else ""


def _unit_or_refuse(session: Session, unit_id: str) -> None:
    try:
        session.chain.chart.unit(unit_id)
    except GrievanceError as unknown:
        refuse(unknown)


def _contribution(c: Contribution, thresholds: StarThresholds) -> dict[str, Any]:
    view = entry_view(c.entry)
    return {"entry_id": view.entry_id, "kind": view.kind, "name": view.name, "unit_id": view.unit_id,
            "on_roster": view.on_roster, "points": c.points, "stars": thresholds.stars(c.points),
            "claims": c.counts["claims"], "resolved": c.counts["resolved"], "replied": c.counts["replied"],
            "rated": c.rated, "satisfaction_rate": c.satisfaction_rate}  # fmt: skip


def _print_contributions(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table("entry", "kind", "name", "unit", "claims", "resolved", "replied", "satisfied", "points", "stars",
                  title=title)  # fmt: skip
    for r in rows:
        rate = r["satisfaction_rate"]
        table.add_row(r["entry_id"], r["kind"], r["name"], r["unit_id"], str(r["claims"]), str(r["resolved"]),
                      str(r["replied"]), "-" if rate is None else f"{rate:.0%} of {r['rated']}", str(r["points"]),
                      "★" * r["stars"] or "-")  # fmt: skip
    out.print(table)


@roster.command("service")
@click.argument("workplace_id")
@click.option("--year", type=click.IntRange(2000, 2100), required=True, help="The year whose service is read.")
@json_option
def service(workplace_id: str, year: int, as_json: bool) -> None:
    """A workplace's members' service where they live (双认可): every member registered with WORKPLACE_ID as their
    workplace, with the claims they made as members that year, what came of them, their points and stars."""
    with opened() as session:
        book = _book(session)
        found = book.entries([workplace_id])
        workplace = found[0] if found else None
        # A workplace is an organisation, as a member's registration names it (RosterBook checks it so at join).
        if workplace is None or not workplace.kind.is_organisation:
            fail(f"workplace_id: {workplace_id!r} is not an organisation on the roster", error_code="not_found")
        everyone = book.ever_on(u.id for u in session.chain.chart.walk(None))
        year_of, unreadable = _year_of(session, year)
    thresholds = session.settings.star_thresholds
    rows = [_contribution(c, thresholds) for c in workplace_service(year_of, everyone, workplace_id)]
    if as_json:
        click.echo(encoder.encode({"year": year, "workplace_id": workplace_id, "workplace": workplace.name,
                                   "members": rows}))  # fmt: skip
        return
    _print_contributions(f"{workplace.name} ({workplace_id}): its members' service in {year}", rows)
    served = sum(1 for r in rows if r["claims"])
    out.print(f"{len(rows):,} members registered with it, {served:,} of whom claimed in {year}"
              + _passed_by(unreadable))  # fmt: skip


@roster.command("year-end")
@click.option("--year", type=click.IntRange(2000, 2100), required=True, help="The year whose contributions are read.")
@click.option("--unit", "unit_id", help="A street (or any unit): the bodies registered there and below; default all.")
@json_option
def year_end(year: int, unit_id: str | None, as_json: bool) -> None:
    """A street's year-end view of its organisations: each party group, party organisation and stationed unit
    registered at the unit or below, with its claims, resolutions, replies, residents' satisfaction and stars."""
    with opened() as session:
        if unit_id is not None:
            _unit_or_refuse(session, unit_id)
        units = [u.id for u in session.chain.chart.walk(unit_id)]
        everyone = _book(session).ever_on(units)
        year_of, unreadable = _year_of(session, year)
    thresholds = session.settings.star_thresholds
    rows = [_contribution(c, thresholds) for c in street_year_end(year_of, everyone, set(units))]
    if as_json:
        click.echo(encoder.encode({"year": year, "unit_id": unit_id, "organisations": rows}))
        return
    _print_contributions(f"{year}: the organisations' contributions" + (f" at {unit_id}" if unit_id else ""), rows)
    claimed = sum(1 for r in rows if r["claims"])
    out.print(f"{len(rows):,} organisations and groups, {claimed:,} of which claimed in {year}"
              + _passed_by(unreadable))  # fmt: skip


@roster.command("forget")
@click.argument("entry_id")
@json_option
def forget(entry_id: str, as_json: bool) -> None:
    """Erase a person's name: their key is destroyed, and it reads "[erased]" everywhere from now on."""
    with opened() as session:
        try:
            destroyed = _book(session).forget(entry_id)
        except GrievanceError as e:
            refuse(e)
    if as_json:
        click.echo(msgspec.json.encode({"entry_id": entry_id, "key_destroyed": destroyed}))
    else:
        click.echo(f"forgot {entry_id}: their name reads [erased] from now on"
                   + ("" if destroyed else " (it was erased before)"))  # fmt: skip
