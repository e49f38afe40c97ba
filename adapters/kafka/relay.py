"""The event relay: every stored event, in log order, to the events topic; at least once, never skipped.

The relay's position lives in the event store's database (a tracking record). It moves only after
the broker has acknowledged every event up to it, so a crash between the two sends some events
again and skips none. Consumers dedupe on (grievance_id, version), or on the envelope's event_id.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import msgspec
import structlog
from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from kafka import KafkaProducer

from adapters import wire
from adapters.audit.trail import AuditTrail
from adapters.kafka.settings import KafkaSettings
from adapters.storage.log_follower import follow_log
from engine.service_chain import ServiceChain

log = structlog.get_logger("grievance.relay")
envelope_encoder = msgspec.json.Encoder()


class EventRelay:
    """Sends pages of the chain's events to Kafka, keyed by grievance id, then records how far it got."""

    def __init__(
        self,
        chain: ServiceChain,
        trail: AuditTrail,
        tracking: TrackingRecorder,
        producer: KafkaProducer,
        topic: str,
        *,
        page_size: int = 1000,
    ) -> None:
        self.chain = chain
        self.tracking = tracking
        self.producer = producer
        self.topic = topic
        self.page_size = page_size
        self.tracking_name = f"relay:{topic}<-grievances"
        self.trail = trail
        # Personal fields leave sealed: forgetting a resident must make every copy on the topic unreadable too.
        self.mapper = chain.sealed_mapper()

    @staticmethod
    def producer_for(settings: KafkaSettings, client_id: str = "grievance-relay") -> KafkaProducer:
        """A producer that keeps each partition's records in the order sent, even when it retries."""
        return KafkaProducer(
            bootstrap_servers=settings.servers,
            client_id=client_id,
            acks="all",
            linger_ms=5,
            retries=10,
            max_in_flight_requests_per_connection=1,
        )

    def position(self) -> int:
        """The log position of the last event the broker acknowledged."""
        return self.tracking.max_tracking_id(self.tracking_name) or 0

    def step(self) -> int:
        """Send the next page; the number of events sent (0 when every stored event has been sent)."""
        notifications = self.chain.recorder.select_notifications(start=self.position() + 1, limit=self.page_size)
        if not notifications:
            return 0
        events: list[Any] = [self.mapper.to_domain_event(n) for n in notifications]
        # Each envelope carries its chained hash, so consumers can keep the chain's heads outside the store.
        hashes = self.trail.store.select_hashes_of(list({e.originator_id for e in events}))
        futures = []
        for notification, event in zip(notifications, events, strict=True):
            envelope = wire.envelope(event)
            if (h := hashes[envelope.grievance_id].get(envelope.version)) is not None:
                envelope = msgspec.structs.replace(envelope, hash=h.hex())
            futures.append(
                self.producer.send(
                    self.topic,
                    key=str(envelope.grievance_id).encode(),
                    value=envelope_encoder.encode(envelope),
                    headers=[
                        ("type", envelope.type.encode()),
                        ("version", str(envelope.version).encode()),
                        ("schema_version", str(envelope.schema_version).encode()),
                        ("position", str(notification.id).encode()),
                    ],
                )
            )
        self.producer.flush()
        for future in futures:
            future.get(timeout=0)  # raises if the broker refused one: the position then stays where it was
        # A second relay on the same store may have recorded this page first; both sent it, which
        # at-least-once allows, and the position is right either way.
        with contextlib.suppress(IntegrityError):
            self.tracking.insert_tracking(Tracking(self.tracking_name, notifications[-1].id))
        log.info("relayed", events=len(notifications), position=notifications[-1].id)
        return len(notifications)

    def catch_up(self, stop: threading.Event | None = None) -> int:
        """Send pages until every stored event has been sent, or `stop` is set; the number sent."""
        total = 0
        while not (stop and stop.is_set()) and (count := self.step()):
            total += count
        return total

    def follow(self, stop: threading.Event, *, idle_wait: float = 0.2) -> None:
        """Relay new events as they are stored, until `stop` is set."""
        follow_log(self.chain.recorder, lambda: self.catch_up(stop), stop, idle_wait=idle_wait)
