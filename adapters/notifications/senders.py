"""Senders: where a delivery goes. The file (or console) sender writes each as a JSON line, the phone masked:
it stands in for a gateway, and its output is read like a log. The webhook sender POSTs each as JSON to an SMS
gateway's URL, the phone whole, with the message's idempotency key, so a retry is recognised there."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import msgspec

from engine.personal_data import masked


class Delivery(msgspec.Struct, kw_only=True, frozen=True):
    """One message as a sender delivers it: `to` is the resident's phone, in clear only here."""

    message_id: str
    kind: str
    to: str
    text: str
    grievance_id: str
    receipt: str
    page: str


class Sender(Protocol):
    """Delivers one message, or raises (any exception: the delivery is tried again later)."""

    def send(self, delivery: Delivery) -> None: ...


class FileSender:
    """Writes each delivery as one JSON line to a file (appended) or to standard output, the phone masked."""

    def __init__(self, path: Path | None = None, stream: IO[str] | None = None) -> None:
        self.path = path
        self.stream = stream

    def send(self, delivery: Delivery) -> None:
        shown = msgspec.structs.replace(delivery, to=masked("resident_phone", delivery.to) or "")
        line = json.dumps(msgspec.to_builtins(shown), ensure_ascii=False)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        else:
            out = self.stream or sys.stdout
            out.write(line + "\n")
            out.flush()


class WebhookSender:
    """POSTs each delivery as JSON to `url`, with an Idempotency-Key header (the message's id); any status but
    2xx, or no answer within `timeout` seconds, is a failed attempt."""

    def __init__(self, url: str, *, timeout: float = 10.0, client: Any = None) -> None:
        self.url = url
        self.client = client or httpx.Client(timeout=timeout)

    def send(self, delivery: Delivery) -> None:
        response = self.client.post(self.url, content=msgspec.json.encode(delivery),
                                    headers={"Content-Type": "application/json",
                                             "Idempotency-Key": delivery.message_id})  # fmt: skip
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"the webhook answered {response.status_code}")
