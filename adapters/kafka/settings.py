"""Kafka settings from the environment: where the broker is, the topics, the workers' consumer group."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigurationError


@dataclass(frozen=True)
class KafkaSettings:
    """What the worker, the relay and `grievance emit` are configured by (GRIEVANCE_KAFKA_* variables)."""

    bootstrap_servers: str = "localhost:9092"
    commands_topic: str = "grievance.commands"
    rejected_topic: str = "grievance.commands.rejected"
    events_topic: str = "grievance.events"
    # Where the notary announces each signed checkpoint (adapters/kafka/checkpoints.py).
    checkpoints_topic: str = "grievance.checkpoints"
    worker_group: str = "grievance-workers"
    # Partitions of a topic the engine creates; the most workers that can share the command topic.
    partitions: int = 6
    # Most commands a worker applies in one transaction.
    batch_size: int = 1000
    # Longest a worker waits for a batch to fill: the floor of command latency when traffic is light.
    batch_wait_ms: int = 50
    # The broker's own defaults make a consumer group take ~20 s to settle after a join; see README.
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 2000
    # The public keys the worker accepts commands signed by (adapters/kafka/signatures.py).
    keys_file: Path | None = None
    # The private key `grievance emit` signs with.
    signing_key: Path | None = None
    # The engine's intake key: producers seal residents' personal data to its public half (PEM), and the
    # workers open it with its private half (adapters/kafka/intake_sealing.py).
    intake_public_key: Path | None = None
    intake_private_key: Path | None = None

    @classmethod
    def from_variables(cls, env: Mapping[str, str]) -> KafkaSettings:
        """Read GRIEVANCE_KAFKA_* variables from `env` (adapters.settings hands the environment over); unset
        ones keep their defaults."""
        defaults = cls()

        def text(name: str, default: str) -> str:
            value = env.get(name, default).strip()
            if not value:
                raise ConfigurationError(f"{name}: must not be empty")
            return value

        def path(name: str) -> Path | None:
            value = env.get(name, "").strip()
            return Path(value) if value else None

        def number(name: str, default: int, low: int) -> int:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigurationError(f"{name}: {raw!r} is not a whole number") from None
            if value < low:
                raise ConfigurationError(f"{name}: {value} is less than {low}")
            return value

        return cls(
            bootstrap_servers=text("GRIEVANCE_KAFKA_BOOTSTRAP", defaults.bootstrap_servers),
            commands_topic=text("GRIEVANCE_KAFKA_COMMANDS_TOPIC", defaults.commands_topic),
            rejected_topic=text("GRIEVANCE_KAFKA_REJECTED_TOPIC", defaults.rejected_topic),
            events_topic=text("GRIEVANCE_KAFKA_EVENTS_TOPIC", defaults.events_topic),
            checkpoints_topic=text("GRIEVANCE_KAFKA_CHECKPOINTS_TOPIC", defaults.checkpoints_topic),
            worker_group=text("GRIEVANCE_KAFKA_WORKER_GROUP", defaults.worker_group),
            partitions=number("GRIEVANCE_KAFKA_PARTITIONS", defaults.partitions, 1),
            batch_size=number("GRIEVANCE_KAFKA_BATCH_SIZE", defaults.batch_size, 1),
            batch_wait_ms=number("GRIEVANCE_KAFKA_BATCH_WAIT_MS", defaults.batch_wait_ms, 0),
            session_timeout_ms=number("GRIEVANCE_KAFKA_SESSION_TIMEOUT_MS", defaults.session_timeout_ms, 1000),
            heartbeat_interval_ms=number("GRIEVANCE_KAFKA_HEARTBEAT_MS", defaults.heartbeat_interval_ms, 100),
            keys_file=path("GRIEVANCE_KAFKA_KEYS_FILE"),
            signing_key=path("GRIEVANCE_KAFKA_SIGNING_KEY"),
            intake_public_key=path("GRIEVANCE_KAFKA_INTAKE_PUBLIC_KEY"),
            intake_private_key=path("GRIEVANCE_KAFKA_INTAKE_PRIVATE_KEY"),
        )

    def as_env(self) -> dict[str, str]:
        """The GRIEVANCE_KAFKA_* variables that give another process these settings."""
        return {
            "GRIEVANCE_KAFKA_BOOTSTRAP": self.bootstrap_servers,
            "GRIEVANCE_KAFKA_COMMANDS_TOPIC": self.commands_topic,
            "GRIEVANCE_KAFKA_REJECTED_TOPIC": self.rejected_topic,
            "GRIEVANCE_KAFKA_EVENTS_TOPIC": self.events_topic,
            "GRIEVANCE_KAFKA_CHECKPOINTS_TOPIC": self.checkpoints_topic,
            "GRIEVANCE_KAFKA_WORKER_GROUP": self.worker_group,
            "GRIEVANCE_KAFKA_PARTITIONS": str(self.partitions),
            "GRIEVANCE_KAFKA_BATCH_SIZE": str(self.batch_size),
            "GRIEVANCE_KAFKA_BATCH_WAIT_MS": str(self.batch_wait_ms),
            "GRIEVANCE_KAFKA_SESSION_TIMEOUT_MS": str(self.session_timeout_ms),
            "GRIEVANCE_KAFKA_HEARTBEAT_MS": str(self.heartbeat_interval_ms),
            **({"GRIEVANCE_KAFKA_KEYS_FILE": str(self.keys_file)} if self.keys_file else {}),
            **({"GRIEVANCE_KAFKA_SIGNING_KEY": str(self.signing_key)} if self.signing_key else {}),
            **({"GRIEVANCE_KAFKA_INTAKE_PUBLIC_KEY": str(self.intake_public_key)} if self.intake_public_key else {}),
            **({"GRIEVANCE_KAFKA_INTAKE_PRIVATE_KEY": str(self.intake_private_key)} if self.intake_private_key else {}),
        }

    @property
    def servers(self) -> list[str]:
        """The bootstrap servers as kafka-python takes them."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
