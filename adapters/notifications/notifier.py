"""The sender process: follows the outbox (projecting the events into it first) and delivers each message
owed to a resident, with retries; nothing to a resident who was forgotten, nothing twice once delivered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from adapters.notifications.deliveries import Deliveries, Pending
from adapters.notifications.senders import Delivery, Sender
from adapters.storage.receipts import Receipts
from engine.errors import GrievanceError
from engine.grievance import Grievance
from engine.personal_data import ERASED
from engine.service_chain import ServiceChain
from projections.resident_loop.changes import ANSWERED, CLAIMED, ESCALATED, REPORTED
from projections.resident_loop.runner import ResidentLoopProjection

log = structlog.get_logger("grievance.notify")
MAX_ATTEMPTS = 8
FIRST_WAIT = timedelta(seconds=5)

TEXTS = {
    REPORTED: "【党建服务链】您反映的“{title}”已受理，回执号{code}。办理进展：{page}",
    CLAIMED: "【党建服务链】您的诉求（回执{code}）已由{unit}认领办理。",
    ESCALATED: "【党建服务链】您的诉求（回执{code}）已提交{unit}办理。",
    ANSWERED: "【党建服务链】您的诉求（回执{code}）已有答复：{text}",
    "rate_request": "【党建服务链】请对您的诉求（回执{code}）的办理进行评价：{page}",
}


class Notifier:
    """Delivers the outbox's messages through `sender`: each at most until delivered, `MAX_ATTEMPTS` times."""

    def __init__(self, chain: ServiceChain, projection: ResidentLoopProjection, deliveries: Deliveries,
                 receipts: Receipts, sender: Sender, *, page_url: str = "",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self.chain = chain
        self.projection = projection
        self.deliveries = deliveries
        self.receipts = receipts
        self.sender = sender
        self.page_url = page_url
        self.clock = clock

    def deliver_once(self, *, batch: int = 100) -> dict[str, int]:
        """Project new events into the outbox, then try each message due; how many ended in each state."""
        self.projection.catch_up()
        states: dict[str, int] = {}
        while pending := self.deliveries.pending(self.clock(), limit=batch):
            for message in pending:
                state = self._deliver(message)
                states[state] = states.get(state, 0) + 1
            if len(pending) < batch or "retrying" in states:
                break
        return states

    def run(self, stop: threading.Event, *, idle_wait: float = 1.0) -> None:
        """Deliver until `stop` is set, waiting `idle_wait` seconds whenever nothing was due."""
        while not stop.is_set():
            try:
                if not self.deliver_once():
                    stop.wait(idle_wait)
            except Exception as error:  # a store that fails a while: said, and tried again
                log.error("delivery round failed", error=type(error).__name__)
                stop.wait(idle_wait * 5)

    def _deliver(self, message: Pending) -> str:
        now = self.clock()
        attempts = message.attempts + 1
        try:
            delivery = self._delivery(message)
        except GrievanceError as error:
            return self._failed(message, attempts, now, f"the grievance cannot be read: {error.code}")
        if isinstance(delivery, str):
            self.deliveries.record(message.message_id, delivery, attempts, now)
            log.info("message", message_id=message.message_id, kind=message.kind, state=delivery)
            return delivery
        try:
            self.sender.send(delivery)
        except Exception as error:  # whatever the sender raised: tried again later, the reason recorded
            return self._failed(message, attempts, now, f"{type(error).__name__}: {error}")
        self.deliveries.record(message.message_id, "delivered", attempts, now)
        log.info("message", message_id=message.message_id, kind=message.kind, state="delivered", attempts=attempts)
        return "delivered"

    def _failed(self, message: Pending, attempts: int, now: datetime, error: str) -> str:
        state = "failed" if attempts >= MAX_ATTEMPTS else "retrying"
        self.deliveries.record(message.message_id, state, attempts, now, next_at=now + FIRST_WAIT * 2 ** (attempts - 1),
                               error=error)  # fmt: skip
        log.warning("message", message_id=message.message_id, kind=message.kind, state=state, attempts=attempts,
                    error=error)  # fmt: skip
        return state

    def _delivery(self, message: Pending) -> Delivery | str:
        """The delivery of `message`, or why there is none: `no_phone`, or `withheld` from a forgotten resident."""
        if message.resident_id is None:
            return "no_phone"
        grievance: Grievance = self.chain.grievance(message.grievance_id)
        phone = grievance.resident_phone
        if phone == ERASED or grievance.resident_name == ERASED:
            return "withheld"
        if not phone:
            return "no_phone"
        # Issued (not only derived): a report that came in by a path that gave no receipt gets its lookup now,
        # so the page the message links to opens.
        code = self.receipts.issue([message.grievance_id])[message.grievance_id]
        page = f"{self.page_url}/r/{code}"
        chart = self.chain.chart
        unit = chart.unit(message.unit_id).name if message.unit_id in chart else message.unit_id
        text = TEXTS[message.kind].format(title=grievance.title, code=code, page=page, unit=unit, text=message.text)
        return Delivery(message_id=message.message_id, kind=message.kind, to=phone, text=text,
                        grievance_id=str(message.grievance_id), receipt=code, page=page)  # fmt: skip
