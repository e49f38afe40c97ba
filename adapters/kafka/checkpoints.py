"""Signed checkpoints announced on Kafka (`grievance.checkpoints`): each note as the notary signed it, keyed by the
log's origin so that one log's checkpoints stay in order on one partition, for witnesses and mirrors to follow."""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from adapters.audit.checkpoint import SignedCheckpoint
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.topics import ensure_topics
from engine.errors import InfrastructureError


class CheckpointTopic:
    """A producer of checkpoint notes to the checkpoints topic; each send waits for the broker's acknowledgement."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    @classmethod
    def connect(cls, settings: KafkaSettings) -> CheckpointTopic:
        """The topic (created when missing, its notes kept for good) and a producer acknowledged by every in-sync
        replica."""
        try:
            ensure_topics(settings, settings.checkpoints_topic)
            producer = KafkaProducer(bootstrap_servers=settings.servers, client_id="grievance-notary", acks="all")
        except KafkaError as e:
            raise InfrastructureError(f"kafka: {settings.bootstrap_servers} cannot be reached: {e}") from None
        return cls(producer, settings.checkpoints_topic)

    def announce(self, signed: SignedCheckpoint) -> None:
        """Send the note and wait until the broker has stored it."""
        try:
            future = self.producer.send(self.topic, key=signed.checkpoint.origin.encode(), value=signed.note().encode())
            self.producer.flush()
            future.get(timeout=30)
        except KafkaError as e:
            raise InfrastructureError(f"kafka: checkpoint of {signed.checkpoint.size} leaves not sent to "
                                      f"{self.topic}: {e}") from None  # fmt: skip

    def close(self) -> None:
        self.producer.close()


def announcer(settings: KafkaSettings, last: SignedCheckpoint | None) -> Callable[[SignedCheckpoint], None]:
    """What sends each new checkpoint to the topic; the last one published is sent again first, so that one
    published just before a crash is announced too (a consumer sees the same note twice at most)."""
    topic = CheckpointTopic.connect(settings)
    if last is not None:
        topic.announce(last)
    return topic.announce
