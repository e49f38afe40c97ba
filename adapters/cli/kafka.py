"""The Kafka commands: the command worker, the event relay, and `emit` for grid workers' apps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import click
import msgspec

from adapters import composition
from adapters.cli.session import (
    EXIT_INFRASTRUCTURE,
    fail,
    holder_on_roster,
    infrastructure_failures_exit,
    json_option,
    opened,
    out,
    settings_or_exit,
    stop_on_signals,
)
from adapters.kafka.intake_sealing import make_intake_key
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import DEFAULT_KEYS_FILE, KeyRole, add_key, read_keys, revoke_key
from engine.access import Role
from engine.errors import ConfigurationError


def register(main: click.Group) -> None:
    """Add these commands to the `grievance` group."""
    main.add_command(worker)
    main.add_command(relay)
    main.add_command(emit)
    main.add_command(key)


@contextmanager
def reaching_kafka(settings: KafkaSettings) -> Iterator[None]:
    """A broker that cannot be reached, or fails, is one line and exit 3."""
    # Kafka's client is imported by the verbs that reach it: the others start without it (adapters/composition.py).
    from kafka.errors import KafkaError, KafkaTimeoutError

    try:
        yield
    except KafkaTimeoutError as e:
        where = f"{settings.bootstrap_servers} (GRIEVANCE_KAFKA_BOOTSTRAP)"
        fail(f"GRIEVANCE_KAFKA_BOOTSTRAP: cannot reach Kafka at {where}: {e}", EXIT_INFRASTRUCTURE)
    except KafkaError as e:
        fail(f"kafka: Kafka failed: {e}", EXIT_INFRASTRUCTURE)


@click.command()
def worker() -> None:
    """Apply grid workers' commands from Kafka in batches, until stopped (SIGTERM or Ctrl-C).

    Run several: they share the command topic's partitions in one consumer group. Settings:
    GRIEVANCE_KAFKA_BOOTSTRAP, GRIEVANCE_KAFKA_COMMANDS_TOPIC, GRIEVANCE_KAFKA_REJECTED_TOPIC,
    GRIEVANCE_KAFKA_WORKER_GROUP, GRIEVANCE_KAFKA_BATCH_SIZE, GRIEVANCE_KAFKA_BATCH_WAIT_MS.
    """
    with opened(log_level="info") as session:
        # A broken key file is named at once, not after the half-minute a missing broker takes to say so.
        keys = composition.build_key_book(session.settings, session.chain.chart)
        with reaching_kafka(kafka := session.settings.kafka):
            from adapters.kafka.topics import ensure_topics

            ensure_topics(kafka, kafka.commands_topic, kafka.rejected_topic)
            command_worker = composition.build_worker(session.settings, session.chain, keys)
            stop = stop_on_signals()
            out.print(f"Worker in group {kafka.worker_group!r} on {kafka.commands_topic!r} at "
                      f"{kafka.bootstrap_servers}.")  # fmt: skip
            try:
                command_worker.run(stop)
            finally:
                command_worker.close()


@click.command()
@click.option("--page-size", default=1000, show_default=True, type=click.IntRange(min=1), help="Events a send.")
@click.option("--idle-wait", default=0.2, show_default=True, help="Seconds to wait for new events when idle.")
def relay(page_size: int, idle_wait: float) -> None:
    """Send every stored event to the events topic (GRIEVANCE_KAFKA_EVENTS_TOPIC), until stopped.

    At least once, in per-grievance order: consumers dedupe on (grievance_id, version).
    """
    with opened(log_level="info") as session, reaching_kafka(kafka := session.settings.kafka):
        from adapters.kafka.topics import ensure_topics

        ensure_topics(kafka, kafka.events_topic)
        event_relay = composition.build_relay(session.settings, session.chain, page_size=page_size)
        stop = stop_on_signals()
        out.print(f"Relaying to {kafka.events_topic!r} from log position {event_relay.position():,}.")
        try:
            event_relay.follow(stop, idle_wait=idle_wait)
        finally:
            event_relay.producer.close()


@click.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="The private key to sign with.")
@json_option
def emit(source: BinaryIO, key: Path | None, as_json: bool) -> None:
    """Validate commands, sign them and produce them to the command topic, keyed by grievance id.

    SOURCE (default stdin) holds one JSON command, a JSON list of them, or one per line. All are
    checked against the schema first: if one is malformed, none is sent (exit 1). Each is signed with
    the private key --key names (default GRIEVANCE_KAFKA_SIGNING_KEY): the worker applies it as whoever
    holds that key.
    """
    from adapters.kafka.emitter import MalformedCommand, validated

    data = source.read()
    try:
        items = _commands_in(data)
        commands = [validated(item, i) for i, item in enumerate(items)]
    except MalformedCommand as e:
        fail(f"command {e.index}: {e.field}: {e.reason}", error_code="malformed")
    if not commands:
        fail("source: no commands in the input")
    settings = settings_or_exit()
    with infrastructure_failures_exit():
        emitter = composition.build_emitter(settings, key)
    with reaching_kafka(settings.kafka):
        try:
            sent = emitter.send(commands)
        finally:
            emitter.close()
    if as_json:
        click.echo(msgspec.json.encode(sent))
        return
    for s in sent:
        out.print(f"{s.command_id}: grievance {s.grievance_id} → {s.topic}[{s.partition}] at offset {s.offset}")
    out.print(f"{len(sent)} command{'s' if len(sent) != 1 else ''} sent.")


def _commands_in(data: bytes) -> list[bytes]:
    """The commands of a JSON document (one command or a list) or of JSON Lines, each still undecoded."""
    from adapters.kafka.emitter import MalformedCommand

    stripped = data.strip()
    if stripped.startswith(b"["):
        try:
            return [bytes(raw) for raw in msgspec.json.decode(stripped, type=list[msgspec.Raw])]
        except msgspec.DecodeError as e:
            raise MalformedCommand(0, "$", str(e)) from None
    with contextlib.suppress(msgspec.DecodeError):
        msgspec.json.decode(stripped)
        return [stripped]  # one command, however it is laid out
    return [line for line in stripped.splitlines() if line.strip()] if stripped else []


@click.group()
def key() -> None:
    """Keys that sign commands on Kafka: the worker applies a command as whoever holds the key it is signed with.
    The key file (GRIEVANCE_KAFKA_KEYS_FILE) holds public keys only; a revoked key is refused without a restart."""


def _keys_file(path: Path | None) -> Path:
    return path or settings_or_exit().kafka.keys_file or DEFAULT_KEYS_FILE


keys_file_option = click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=Path),
    help="The key file (default: $GRIEVANCE_KAFKA_KEYS_FILE, else kafka-keys.json).",
)  # fmt: skip


@key.command("add")
@click.option("--name", required=True, help="Who holds it: a grid worker, an admin, or a gateway that names its users.")
@click.option("--role", required=True, type=click.Choice([r.value for r in KeyRole]))
@click.option("--unit", "unit_id", help="A grid worker's jurisdiction: the unit whose subtree they act in.")
@click.option("--private-key", "private_out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (PEM, readable by its owner only); never overwritten.")  # fmt: skip
@keys_file_option
def key_add(name: str, role: str, unit_id: str | None, private_out: Path, path: Path | None) -> None:
    """Make a signing key: its private half to --private-key, its public half appended to the key file. Where
    the store keeps a roster, a grid worker's key is made only for a person on it at or below --unit."""
    keys = _keys_file(path)
    with opened() as session:
        chart = session.chain.chart
        holder_on_roster(session, name, Role(role), unit_id)
    try:
        entry = add_key(keys, private_out, name=name, role=KeyRole(role), unit_id=unit_id, chart=chart)
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    out.print(f"key {entry.key_id} for {name} ({role}{' of ' + unit_id if unit_id else ''}): private key in "
              f"{private_out}, public key in {keys}")  # fmt: skip


@key.command("list")
@keys_file_option
@json_option
def key_list(path: Path | None, as_json: bool) -> None:
    """The keys the worker knows, revoked ones marked."""
    try:
        entries = read_keys(_keys_file(path)).keys
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    if as_json:
        click.echo(msgspec.json.encode(entries))
        return
    zone = settings_or_exit().display_zone
    for entry in entries:
        state = f"revoked {zone.minute(entry.revoked_at)}" if entry.revoked_at else "in use"
        where = f" of {entry.unit_id}" if entry.unit_id else ""
        out.print(f"{entry.key_id}  {entry.name}  {entry.role}{where}  added {zone.minute(entry.added_at)}  {state}")


@key.command("revoke")
@click.argument("key_id")
@keys_file_option
def key_revoke(key_id: str, path: Path | None) -> None:
    """Revoke a key: what it signs is refused from the worker's next look at the key file."""
    try:
        entry = revoke_key(_keys_file(path), key_id)
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    when = settings_or_exit().display_zone.minute(entry.revoked_at) if entry.revoked_at else "now"
    out.print(f"key {entry.key_id} ({entry.name}) revoked at {when}")


@key.command("intake")
@click.option("--private-key", "private_out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The private half, for the workers (GRIEVANCE_KAFKA_INTAKE_PRIVATE_KEY).")  # fmt: skip
@click.option("--public-key", "public_out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The public half, for every producer (GRIEVANCE_KAFKA_INTAKE_PUBLIC_KEY).")  # fmt: skip
def key_intake(private_out: Path, public_out: Path) -> None:
    """Make the engine's intake key: producers seal residents' names and phones to it (HPKE, RFC 9180)."""
    try:
        make_intake_key(private_out, public_out)
    except ConfigurationError as e:
        fail(str(e), error_code="configuration")
    out.print(f"intake key: private half in {private_out} (the workers'), public half in {public_out} (producers')")
