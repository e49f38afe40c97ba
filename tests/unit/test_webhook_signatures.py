"""The webhook's messages are signed as Standard Webhooks specifies: a gateway holding the shared secret checks
them with the reference library, and any change to the body, the id or the time fails the check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from adapters.composition import build_sender
from adapters.notifications.senders import Delivery, WebhookSender, new_webhook_secret, read_webhook_secret
from adapters.settings import Settings
from engine.errors import ConfigurationError

DELIVERY = Delivery(message_id="m-1", kind="reported", to="13912345678", text="已收到", grievance_id="g-1",
                    receipt="K7QX-2M4P", page="/r/K7QX-2M4P")  # fmt: skip


def _posted(sender_secret: str, *, answer: int = 200) -> httpx.Request:
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answer, headers={"Location": "https://elsewhere.example/"})

    client = httpx.Client(transport=httpx.MockTransport(gateway))
    WebhookSender("https://sms.example.org/send", sender_secret, client=client).send(DELIVERY)
    return seen[0]


@pytest.fixture
def secret(tmp_path: Path) -> str:
    new_webhook_secret(tmp_path / "webhook.secret")
    return read_webhook_secret(tmp_path / "webhook.secret")


def test_a_gateway_with_the_secret_checks_the_signature_and_reads_the_message(secret: str) -> None:
    request = _posted(secret)
    headers = dict(request.headers.items())
    body: dict[str, Any] = Webhook(secret).verify(request.content, headers)
    assert body["to"] == "13912345678"
    assert headers["webhook-id"] == headers["idempotency-key"] == "m-1"
    assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60


@pytest.mark.parametrize("change", ["body", "id", "timestamp"])
def test_a_changed_message_fails_the_gateways_check(secret: str, change: str) -> None:
    request = _posted(secret)
    headers, content = dict(request.headers.items()), request.content
    if change == "body":
        content = content.replace(b"13912345678", b"13900000000")
    elif change == "id":
        headers["webhook-id"] = "m-2"
    else:
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(content, headers)


def test_another_secret_fails_the_check(secret: str, tmp_path: Path) -> None:
    new_webhook_secret(tmp_path / "other.secret")
    request = _posted(read_webhook_secret(tmp_path / "other.secret"))
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(request.content, dict(request.headers.items()))


def test_a_redirect_is_a_failed_attempt_not_followed(secret: str) -> None:
    with pytest.raises(RuntimeError, match="answered 307"):
        _posted(secret, answer=307)


def test_a_secret_is_never_overwritten_and_is_kept_from_other_users(tmp_path: Path) -> None:
    path = tmp_path / "webhook.secret"
    new_webhook_secret(path)
    first = path.read_text()
    assert first.startswith("whsec_")
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigurationError, match="exists already"):
        new_webhook_secret(path)
    assert path.read_text() == first


@pytest.mark.parametrize("text", ["", "whsec_", "whsec_c2hvcnQ=", "whsec_!!!notbase64!!!", "\xff"])
def test_a_malformed_secret_is_refused_by_its_settings_name(tmp_path: Path, text: str) -> None:
    path = tmp_path / "webhook.secret"
    path.write_text(text, encoding="latin-1")
    with pytest.raises(ConfigurationError, match=r"^GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE: "):
        read_webhook_secret(path)


def test_a_webhook_without_its_secret_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^GRIEVANCE_NOTIFY_WEBHOOK_SECRET_FILE: .*--new-secret"):
        build_sender(Settings(notify_webhook_url="https://sms.example.org/send"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        build_sender(Settings(notify_webhook_url="https://sms.example.org/send",
                              notify_webhook_secret_file=tmp_path / "missing"))  # fmt: skip
