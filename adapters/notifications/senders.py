"""Senders: where a delivery goes. The file (or console) sender writes each as a JSON line, the phone masked:
it stands in for a gateway, and its output is read like a log. The webhook sender POSTs each as JSON to an SMS
gateway's URL, the phone whole, over TLS (plain http:// only to this machine), signed as Standard Webhooks
specifies (standardwebhooks.com: `webhook-id`, `webhook-timestamp`, `webhook-signature`), so the gateway knows it
came from this office, and with the message's id as its idempotency key, so a retry is recognised there."""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import msgspec
from standardwebhooks import Webhook

from engine.errors import ConfigurationError
from engine.personal_data import masked

SECRET_SETTING = "GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE"


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
    """POSTs each delivery as JSON to `url`, signed with the gateway's shared `secret` (`whsec_…`), with the
    message's id as `webhook-id` and `Idempotency-Key`; any status but 2xx (a redirect too: the phone goes only
    where it was configured to), or no answer within `timeout` seconds, is a failed attempt."""

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0, client: Any = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self.url = url
        self.signer = Webhook(secret)
        self.clock = clock
        # Not trust_env: an HTTP(S)_PROXY in the environment would route residents' phones through a proxy the
        # URL's rules never saw (in clear, for an http:// gateway on this machine).
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def send(self, delivery: Delivery) -> None:
        body = msgspec.json.encode(delivery)
        at = self.clock()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": delivery.message_id,
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self.signer.sign(delivery.message_id, at, body.decode()),
        }
        response = self.client.post(self.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"the webhook answered {response.status_code}")


def new_webhook_secret(path: Path) -> None:
    """Write a new shared secret (`whsec_` and 32 random bytes in base64, as Standard Webhooks writes them) to
    `path`, mode 0600; an existing file is never overwritten (the gateway holds its secret already)."""
    text = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{SECRET_SETTING}: {path} exists already; it is not overwritten") from None
    except OSError as e:
        raise ConfigurationError(f"{SECRET_SETTING}: cannot make {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)


def read_webhook_secret(path: Path | None) -> str:
    """The gateway's shared secret from `path`; a missing, unreadable or malformed file is a `ConfigurationError`
    naming the setting and how to make one."""
    if path is None:
        raise ConfigurationError(f"{SECRET_SETTING}: a webhook needs the secret its messages are signed with; "
                                 "make one with `grievance notify --new-secret`")  # fmt: skip
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigurationError(f"{SECRET_SETTING}: {path} does not exist; make it with "
                                 "`grievance notify --new-secret`") from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"{SECRET_SETTING}: {path} cannot be read ({e})") from None
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    # Standard Webhooks' secrets are 24 to 64 random bytes.
    if not 24 <= len(key) <= 64:
        raise ConfigurationError(f"{SECRET_SETTING}: {path} is not a webhook secret (whsec_ and 24 to 64 bytes in "
                                 "base64); make one with `grievance notify --new-secret`")  # fmt: skip
    return text
