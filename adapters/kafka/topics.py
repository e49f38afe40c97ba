"""The engine's Kafka topics, created when missing so that a fresh cluster needs no manual step."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from adapters.kafka.settings import KafkaSettings

# How long each topic the engine creates keeps its messages (milliseconds): commands a week (a worker down over
# a long weekend still finds them; the store is the record), rejected copies a month (for someone to look
# into), events for good (consumers replay them; their personal fields are sealed, so erasure reaches them),
# checkpoints for good (a witness that joins late checks the log's whole signed history).
RETENTION_MS = {"commands": 7 * 86_400_000, "rejected": 30 * 86_400_000, "events": -1, "checkpoints": -1}


def ensure_topics(settings: KafkaSettings, *names: str) -> None:
    """Create each named topic with the configured partition count and its stated retention, unless it exists."""
    admin = KafkaAdminClient(bootstrap_servers=settings.servers, client_id="grievance-admin")
    try:
        existing = set(admin.list_topics())
        for name in names:
            if name in existing:
                continue
            # Another process may create it in the meantime.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, settings.partitions, 1, topic_configs=_configs(settings, name))])
    finally:
        admin.close()


def _configs(settings: KafkaSettings, name: str) -> dict[str, str]:
    kind = {
        settings.commands_topic: "commands",
        settings.rejected_topic: "rejected",
        settings.events_topic: "events",
        settings.checkpoints_topic: "checkpoints",
    }
    return {"retention.ms": str(RETENTION_MS[kind[name]])} if name in kind else {}
