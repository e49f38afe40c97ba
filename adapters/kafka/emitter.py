"""The client for grid workers' apps: validate commands against the schema, then produce them to Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from kafka import KafkaProducer

from adapters import wire
from adapters.kafka.intake_sealing import IntakeSealer
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import CommandSigner
from adapters.settings import Settings
from engine.commands import Command, CommandBase, Report, command_decoder
from engine.errors import ConfigurationError

command_encoder = msgspec.json.Encoder()


class MalformedCommand(ValueError):
    """A command that does not match the schema; nothing of its batch was sent."""

    def __init__(self, index: int, field: str, reason: str) -> None:
        super().__init__(f"command {index}: {field}: {reason}")
        self.index, self.field, self.reason = index, field, reason


class Sent(msgspec.Struct, frozen=True):
    """Where the broker stored one command."""

    command_id: str
    grievance_id: str
    topic: str
    partition: int
    offset: int


def validated(item: CommandBase | Mapping[str, Any] | bytes | str, index: int = 0) -> Command:
    """The command `item` describes, checked against the schema exactly as the worker will check it."""
    if isinstance(item, CommandBase | Mapping):
        item = command_encoder.encode(item)
    elif isinstance(item, str):
        item = item.encode()
    try:
        command: Command = command_decoder.decode(item)
    except wire.UNDECODABLE as e:
        refused = wire.malformed(e)
        raise MalformedCommand(index, refused.field, refused.reason) from None
    return command


class CommandEmitter:
    """Produces commands to the command topic, keyed by grievance id so each grievance's stay in order."""

    def __init__(
        self, producer: KafkaProducer, topic: str, signer: CommandSigner, sealer: IntakeSealer | None = None
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.signer = signer
        self.sealer = sealer

    @classmethod
    def connect(
        cls, settings: KafkaSettings, signer: CommandSigner, client_id: str = "grievance-emit"
    ) -> CommandEmitter:  # the sealer comes from the settings' intake public key
        """An emitter whose sends, signed by `signer`, are acknowledged by every in-sync replica, in order per
        partition."""
        producer = KafkaProducer(
            bootstrap_servers=settings.servers,
            client_id=client_id,
            acks="all",
            linger_ms=5,
            max_in_flight_requests_per_connection=1,
        )
        sealer = IntakeSealer.from_file(settings.intake_public_key) if settings.intake_public_key else None
        return cls(producer, settings.commands_topic, signer, sealer)

    def emit(self, items: Iterable[CommandBase | Mapping[str, Any] | bytes | str]) -> list[Sent]:
        """Validate every command first (one bad one sends none), then send them all and wait for the broker."""
        return self.send([validated(item, i) for i, item in enumerate(items)])

    def send(self, commands: Sequence[Command]) -> list[Sent]:
        """Send commands `validated` has already checked, and wait for the broker to store them all."""
        futures = []
        for c in commands:
            if isinstance(c, Report) and c.resident and (c.resident.name or c.resident.phone):
                if self.sealer is None:
                    raise ConfigurationError("GRIEVANCE_KAFKA_INTAKE_PUBLIC_KEY: a resident's name or phone never "
                                             "leaves unsealed; set it to the engine's intake public key")  # fmt: skip
                c = self.sealer.sealed(c)
            key, value = str(c.grievance_id).encode(), command_encoder.encode(c)
            futures.append(
                self.producer.send(
                    self.topic, key=key, value=value, headers=self.signer.headers(self.topic, key, value)
                )
            )
        self.producer.flush()
        sent = []
        for command, future in zip(commands, futures, strict=True):
            meta = future.get(timeout=0)
            sent.append(Sent(command.command_id, str(command.grievance_id), meta.topic, meta.partition, meta.offset))
        return sent

    def close(self) -> None:
        """Send what is buffered and disconnect."""
        self.producer.close()


def emit(
    commands: Iterable[CommandBase | Mapping[str, Any] | bytes | str], signer: CommandSigner,
    settings: KafkaSettings | None = None,
) -> list[Sent]:  # fmt: skip
    """Validate, sign and produce commands with these Kafka settings (default: the environment's): the one call
    an app needs."""
    emitter = CommandEmitter.connect(settings or Settings.from_env().kafka, signer)
    try:
        return emitter.emit(commands)
    finally:
        emitter.close()
