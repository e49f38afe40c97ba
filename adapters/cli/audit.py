"""Auditors' commands: a grievance's history with its hashes, the chain's verification, and exports."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import click
from rich.table import Table

from adapters import composition
from adapters.audit.export import as_html, as_json_lines
from adapters.audit.inclusion import included_in_latest
from adapters.cli.session import (
    EXIT_BROKEN,
    EXIT_INFRASTRUCTURE,
    F,
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
    settings_or_exit,
)
from adapters.cli.transparency import checkpoint_options, read_checkpoint, verify_against_checkpoint
from adapters.display_zone import DisplayZone
from adapters.storage.key_encryption import new_key_encryption_key, retire_key_encryption_key
from engine.errors import ConfigurationError, GrievanceError
from engine.grievance import Grievance
from schemas.events import EventEnvelope
from schemas.results import History


def register(main: click.Group) -> None:
    """Add these commands to the `grievance` group."""
    main.add_command(history)
    main.add_command(verify)
    main.add_command(export)
    main.add_command(forget_resident)
    main.add_command(disclosures)
    main.add_command(kek)
    main.add_command(operator_actions)


def print_history(gid: UUID, envelopes: list[EventEnvelope], zone: DisplayZone) -> None:
    """The timeline as a table: version, event, times (both in the display zone, labelled), actor, details and
    the start of each hash."""
    table = Table(title=f"grievance {gid}")
    for column in ("v", "event", "occurred", "recorded", "actor", "details", "hash"):
        table.add_column(column, overflow="fold")
    for env in envelopes:
        details = ", ".join(f"{k}={zone.detail(k, v)}" for k, v in env.payload.items())
        table.add_row(
            str(env.version),
            Grievance.label_of(env.type),
            zone.second(env.occurred_at),
            zone.second(env.recorded_at),
            env.actor,
            details,
            (env.hash or "missing")[:12],
        )
    out.print(table)


@click.command()
@click.argument("grievance_id")
@reveal_options
@json_option
def history(grievance_id: str, reveal: bool, reason: str | None, as_json: bool) -> None:
    """Every event of a grievance: version, what, when it happened and was stored, who, and its hash."""
    gid = parse_uuid(grievance_id)
    with opened() as session:
        try:
            envelopes = session.trail().history(gid, reveal=revealing(session, gid, reveal, reason, "history"))
        except GrievanceError as e:
            refuse(e)
    if as_json:
        click.echo(encoder.encode(History(grievance_id=gid, events=envelopes)))
    else:
        print_history(gid, envelopes, session.settings.display_zone)


@click.command()
@click.argument("grievance_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Verify every grievance in the store.")
@checkpoint_options
@json_option
def verify(grievance_id: str | None, everything: bool, checkpoint_file: Path | None, verifier_keys: tuple[str, ...],
           as_json: bool) -> None:  # fmt: skip
    """Recompute the hash chain of one grievance (or --all) and name the first broken link; with --checkpoint,
    check that the store is an append-only extension of that checkpoint.

    Exit 0 when intact, 4 when a link is broken or the store departs from the checkpoint (1 for a bad argument).
    """
    if bool(grievance_id) == everything:
        fail("grievance_id: give a grievance id or --all")
    if checkpoint_file is not None:
        signed, signature_checked = read_checkpoint(checkpoint_file, verifier_keys)
        gid = parse_uuid(grievance_id) if grievance_id else None
        verify_against_checkpoint(gid, signed, signature_checked, as_json)
        return
    kinds: Counter[str] = Counter()
    with opened() as session:
        trail = session.trail()
        if grievance_id:
            try:
                broken = [b for b in [trail.verify(parse_uuid(grievance_id), kinds)] if b is not None]
            except GrievanceError as e:
                refuse(e)
        else:
            broken = list(trail.verify_all(on_batch=kinds.update))
    checked = sum(kinds.values())
    if as_json:
        click.echo(encoder.encode({"checked": checked, "kinds": dict(sorted(kinds.items())), "broken": [
            {"grievance_id": b.grievance_id, "kind": b.kind, "version": b.version, "reason": b.reason}
            for b in broken]}))  # fmt: skip
    elif not broken:
        out.print(f"intact: the hash chains of {_histories(kinds)} verify")
    else:
        for b in broken:
            out.print(f"broken: {b.kind} {b.grievance_id} at version {b.version}: {b.reason}")
        out.print(f"{len(broken):,} of {_histories(kinds)} broken")
    if broken:
        sys.exit(EXIT_BROKEN)


PLURALS = {"roster entry": "roster entries", "history with no events": "histories with no events"}


def _histories(kinds: Counter[str]) -> str:
    """'1,234 histories (1,000 grievances, 200 roster entries, 34 unit rolls)', or '1 grievance' for one kind."""

    def plural(n: int, kind: str) -> str:
        return f"{n:,} {kind if n == 1 else PLURALS.get(kind, kind + 's')}"

    if len(kinds) == 1:
        ((kind, n),) = kinds.items()
        return plural(n, kind)
    total = sum(kinds.values())
    each = ", ".join(plural(n, k) for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{total:,} histories ({each})"


@click.command()
@click.argument("grievance_id")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "html"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write; default stdout.")
@click.option("--now", help="The report's date (RFC 3339); default now.")
@reveal_options
def export(grievance_id: str, fmt: str, output: Path | None, now: str | None, reveal: bool, reason: str | None) -> None:
    """One grievance's history for auditors: JSON Lines (an envelope with its hash a line) or an HTML report."""
    gid = parse_uuid(grievance_id)
    with opened() as session:
        trail = session.trail()
        try:
            envelopes = trail.history(gid, reveal=revealing(session, gid, reveal, reason, "export"))
            broken = trail.verify(gid)
        except GrievanceError as e:
            refuse(e)
        if fmt == "jsonl":
            data = as_json_lines(envelopes)
        else:
            at = parse_time("now", now) if now else datetime.now(UTC)
            where = session.settings.checkpoints_dir
            inclusion = (included_in_latest(composition.build_transparency(session.chain), where, gid, len(envelopes),
                                            session.settings.checkpoint_verifier_keys) if where else None)  # fmt: skip
            data = as_html(gid, envelopes, broken, session.chain.chart, at, session.settings.display_zone,
                           inclusion).encode()  # fmt: skip
    if output:
        output.write_bytes(data)
        out.print(f"wrote {len(envelopes)} events to {output}")
    else:
        sys.stdout.buffer.write(data)


@click.command("forget-resident")
@click.argument("resident_id")
def forget_resident(resident_id: str) -> None:
    """Destroy a resident's key: their name and phone read "[erased]" everywhere from now on.

    The events, their hashes and every other field stay as they were; copies already on the events topic
    were sent sealed, so they become unreadable too.
    """
    with opened() as session:
        try:
            had_key = session.chain.forget_resident(resident_id)
        except GrievanceError as e:
            refuse(e)
    if had_key:
        out.print(f"resident {resident_id}: key destroyed; their name and phone now read [erased]")
    else:
        out.print(f"resident {resident_id}: already erased; their name and phone read [erased]")


def record_options(f: F) -> F:
    """A grievance id (optional), --limit and --json: the options of every record an auditor reads."""
    f = json_option(f)
    f = click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)(f)
    return click.argument("grievance_id", required=False)(f)


def print_records(entries: Sequence[Any], as_json: bool, line: Callable[[Any], str]) -> None:
    """Records as JSON, or a line each."""
    if as_json:
        click.echo(encoder.encode(entries))
        return
    for entry in entries:
        out.print(line(entry))


@click.command()
@record_options
def disclosures(grievance_id: str | None, limit: int, as_json: bool) -> None:
    """Every full reading of residents' personal data (of one grievance, if given), newest first: who, when,
    through which channel, and why."""
    gid = parse_uuid(grievance_id) if grievance_id else None
    with opened() as session:
        entries = composition.build_disclosures(session.chain).latest(grievance_id=gid, limit=limit)
    zone = session.settings.display_zone
    print_records(entries, as_json, lambda d: f"{zone.second(d.read_at)}  {d.reader} ({d.role}) read grievance "
                  f"{d.grievance_id} via {d.channel}: {d.reason}")  # fmt: skip


@click.group()
def kek() -> None:
    """Key-encryption keys (GRIEVANCE_RESIDENT_KEK_FILE), kept off the database host: residents' keys are stored
    wrapped under them, so a backup holds a forgotten resident's key only wrapped, and useless once its
    key-encryption key is retired."""


def _kek_file() -> Path:
    path = settings_or_exit().resident_kek_file
    if path is None:
        fail("GRIEVANCE_RESIDENT_KEK_FILE: name the key-encryption key file", EXIT_INFRASTRUCTURE)
    return path


@kek.command("new")
def kek_new() -> None:
    """Add a fresh key-encryption key and make it the one new keys are wrapped under."""
    try:
        kid = new_key_encryption_key(_kek_file())
    except ConfigurationError as e:
        fail(str(e), EXIT_INFRASTRUCTURE)
    out.print(f"key-encryption key {kid} is current")


@kek.command("rotate")
def kek_rotate() -> None:
    """Wrap every stored resident's key again under the current key-encryption key."""
    with opened() as session:
        count, wrapping = composition.build_resident_keys(session.settings, session.chain).rewrap()
    out.print(f"{count:,} keys wrapped again; key-encryption keys still in use: {', '.join(sorted(wrapping))}")


@kek.command("retire")
@click.argument("kek_id")
def kek_retire(kek_id: str) -> None:
    """Destroy a key-encryption key no stored key is wrapped under (do it once no backup still needs it)."""
    path = _kek_file()
    with opened() as session:
        in_use = composition.build_resident_keys(session.settings, session.chain).wrapping()
    try:
        retire_key_encryption_key(path, kek_id, in_use)
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    out.print(f"key-encryption key {kek_id} destroyed")


@click.command("operator-actions")
@record_options
def operator_actions(grievance_id: str | None, limit: int, as_json: bool) -> None:
    """The commands operators applied at the store (on one grievance, if given), newest first: who ran each,
    as which actor, and what became of it."""
    gid = parse_uuid(grievance_id) if grievance_id else None
    with opened() as session:
        entries = composition.build_operator_log(session.chain).latest(grievance_id=gid, limit=limit)
    zone = session.settings.display_zone
    print_records(entries, as_json, lambda a: f"{zone.second(a.at)}  {a.operator} ran {a.verb}: {a.kind} as "
                  f"{a.actor} on {a.grievance_id} ({a.outcome})")  # fmt: skip
