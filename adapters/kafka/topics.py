"""The engine's Kafka topics, created when missing so that a fresh cluster needs no manual step."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from adapters.kafka.settings import KafkaSettings


def ensure_topics(settings: KafkaSettings, *names: str) -> None:
    """Create each named topic with the configured partition count, unless it exists already."""
    admin = KafkaAdminClient(bootstrap_servers=settings.servers, client_id="grievance-admin")
    try:
        existing = set(admin.list_topics())
        for name in names:
            if name in existing:
                continue
            # Another process may create it in the meantime.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, settings.partitions, 1)])
    finally:
        admin.close()
