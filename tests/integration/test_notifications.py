"""Residents' messages through the outbox: projected from the events (and rebuilt the same), delivered by a
webhook sender to a gateway that fails now and then, exactly once each after the gateway dedupes on the key,
a phone only in the delivery (never in a log), and nothing more to a resident once forgotten."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import structlog
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from adapters.composition import build_chain, build_notifier, build_receipts
from adapters.intake import Intake
from adapters.notifications.notifier import Notifier
from adapters.notifications.senders import FileSender, WebhookSender, new_webhook_secret, read_webhook_secret
from adapters.settings import Settings
from adapters.storage.receipts import read_secret
from engine.access import Principal, Role
from engine.commands import Claim, Command, Escalate, Rate, Reply, Report, Resident, Resolve
from engine.grievance import Category, ClaimMode, Rating, RatingSource
from engine.service_chain import ServiceChain
from schemas.results import Accepted
from tests.scenario import BUILDING, HOUSEHOLD

PHONE = "13912345678"
OPERATOR = Principal("op", Role.OPERATOR)


class Gateway(BaseHTTPRequestHandler):
    """An SMS gateway that checks each message's Standard Webhooks signature with the reference library (401 if
    it fails), and fails one request in three: some before taking the message, some after."""

    received: list[dict[str, Any]]
    keys: list[str]
    forged: list[str]
    rng: random.Random
    secret: str

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            body = Webhook(self.secret).verify(raw, dict(self.headers.items()))
        except WebhookVerificationError as e:
            type(self).forged.append(str(e))
            self.send_response(401)
            self.end_headers()
            return
        assert self.headers["webhook-id"] == self.headers["Idempotency-Key"] == body["message_id"]
        fate = self.rng.random()
        if fate < 0.2:
            self.send_response(503)
        else:
            type(self).received.append(body)
            type(self).keys.append(self.headers["Idempotency-Key"])
            self.send_response(500 if fate < 0.35 else 200)  # taken, but the answer says it failed
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def secret(tmp_path: Path) -> str:
    new_webhook_secret(tmp_path / "webhook.secret")
    return read_webhook_secret(tmp_path / "webhook.secret")


@pytest.fixture
def gateway(secret: str) -> Iterator[tuple[str, type[Gateway]]]:
    handler = type("FlakyGateway", (Gateway,),
                   {"received": [], "keys": [], "forged": [], "rng": random.Random(18), "secret": secret})  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms", handler
    server.shutdown()


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[tuple[Settings, ServiceChain]]:
    key = tmp_path / "receipt.key"
    read_secret(key, create=True)
    settings = Settings(database_url=database_url, durability="off", receipt_key_file=key)
    chain = build_chain(settings)
    yield settings, chain
    chain.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _walk(chain: ServiceChain, intake: Intake, resident: str, *, phone: str = PHONE) -> UUID:
    """Reported with a resident, claimed, escalated, claimed above, replied, rated dissatisfied: seven events."""
    gid, at = uuid4(), datetime.now(UTC) - timedelta(hours=2)

    def step(n: int) -> dict[str, Any]:
        return {"grievance_id": gid, "command_id": f"{gid}-{n}", "occurred_at": at + timedelta(minutes=n)}

    commands: list[Command] = [
        Report(**step(0), actor="worker-li", unit_id=HOUSEHOLD, category=Category.SAFETY, title="楼道灯坏了",
               description="一周没亮", resident=Resident(resident_id=resident, name="王秀英", phone=phone)),
        Claim(**step(1), actor="member-wang", unit_id=HOUSEHOLD, mode=ClaimMode.MEMBER, claimant="member-wang"),
        Escalate(**step(2), actor="member-wang", note="internal: beyond a household"),
        Claim(**step(3), actor="leader-zhao", unit_id=BUILDING, mode=ClaimMode.GROUP, claimant="bg"),
        Reply(**step(4), actor="leader-zhao", reason="internal: budget", answer="物业将于下周更换。"),
    ]  # fmt: skip
    for c in commands:
        (result,) = intake.submit([c], principal=OPERATOR)
        assert isinstance(result, Accepted), result
    return gid


def test_every_message_reaches_a_flaky_gateway_exactly_once_after_dedupe(store: Any, gateway: Any,
                                                                         secret: str) -> None:  # fmt: skip
    settings, chain = store
    url, handler = gateway
    intake = Intake(chain, build_receipts(settings, chain))
    gids = [_walk(chain, intake, f"res-{i}") for i in range(4)]
    clock = Clock()
    notifier = build_notifier(settings, chain, WebhookSender(url, secret, timeout=5))
    notifier.clock = clock
    for _ in range(40):
        notifier.deliver_once()
        clock.now += timedelta(minutes=30)  # past every retry's wait
    states = notifier.deliveries.deliveries()
    assert set(states.values()) == {"delivered"}
    assert handler.forged == []
    assert len(states) == 4 * 6  # reported, claimed, escalated, claimed, answered, asked to rate
    assert len(handler.keys) > len(set(handler.keys)), "the gateway failed after taking some: they came again"
    deduped = dict(zip(handler.keys, handler.received, strict=True))
    assert set(deduped) == set(states)
    for body in deduped.values():
        assert body["to"] == PHONE
        assert body["message_id"] in states
    answered = [b for b in deduped.values() if b["kind"] == "answered"]
    assert {b["grievance_id"] for b in answered} == {str(g) for g in gids}
    assert all("物业将于下周更换。" in b["text"] and "budget" not in b["text"] for b in answered)
    receipts = build_receipts(settings, chain)
    reported = [b for b in deduped.values() if b["kind"] == "reported"]
    assert all(receipts.find(b["receipt"]) == UUID(b["grievance_id"]) for b in reported)
    assert all(f"/r/{b['receipt']}" in b["text"] for b in reported)


def test_a_forgotten_resident_gets_nothing_more_and_no_log_holds_a_phone(store: Any, tmp_path: Path) -> None:
    settings, chain = store
    intake = Intake(chain, build_receipts(settings, chain))
    sent = tmp_path / "sent.jsonl"
    notifier: Notifier = build_notifier(settings, chain, FileSender(sent))
    with structlog.testing.capture_logs() as logs:
        gid = _walk(chain, intake, "res-kept")
        forgotten = _walk(chain, intake, "res-gone")
        first = notifier.deliver_once()
        assert first == {"delivered": 12}
        chain.forget_resident("res-gone")
        office = Principal("office-zhao", Role.ADMIN)
        for g in (gid, forgotten):
            chain.apply(Rate(grievance_id=g, command_id=f"{g}-rate", actor="office-zhao",
                             occurred_at=datetime.now(UTC), rating=Rating.DISSATISFIED,
                             given_by=RatingSource.CALLBACK), principal=office)  # fmt: skip
            chain.apply(Claim(grievance_id=g, command_id=f"{g}-again", actor="leader-zhao",
                              occurred_at=datetime.now(UTC), unit_id=BUILDING, mode=ClaimMode.GROUP, claimant="bg"),
                        principal=OPERATOR)  # fmt: skip
            chain.apply(Resolve(grievance_id=g, command_id=f"{g}-done", actor="leader-zhao",
                                occurred_at=datetime.now(UTC), summary="已更换灯具。"), principal=OPERATOR)  # fmt: skip
        second = notifier.deliver_once()
    assert second == {"delivered": 3, "withheld": 3}
    lines = [json.loads(line) for line in sent.read_text(encoding="utf-8").splitlines()]
    assert [m["grievance_id"] for m in lines].count(str(forgotten)) == 6  # only those sent before the erasure
    assert all(m["to"] == "139****5678" for m in lines)  # the file sender stands in for a gateway: masked
    assert PHONE not in json.dumps(logs, default=str)
    assert PHONE not in sent.read_text(encoding="utf-8")


def test_the_outbox_is_rebuilt_the_same_and_delivers_nothing_twice(store: Any, tmp_path: Path) -> None:
    settings, chain = store
    intake = Intake(chain, build_receipts(settings, chain))
    _walk(chain, intake, "res-1")
    sent = tmp_path / "sent.jsonl"
    notifier = build_notifier(settings, chain, FileSender(sent))
    notifier.deliver_once()
    assert notifier.deliveries.pending(datetime.now(UTC) + timedelta(days=1)) == []
    outbox = "SELECT * FROM {loop_outbox} ORDER BY message_id"
    before = [dict(r) for r in notifier.deliveries.loop.rows(outbox)]
    assert len(before) == 6
    assert notifier.projection.rebuild() == 5  # events
    assert [dict(r) for r in notifier.deliveries.loop.rows(outbox)] == before
    assert notifier.deliver_once() == {}
    assert len(sent.read_text(encoding="utf-8").splitlines()) == 6


def test_a_gateway_holding_another_secret_takes_nothing_and_the_messages_wait(store: Any, gateway: Any,
                                                                              tmp_path: Path) -> None:  # fmt: skip
    settings, chain = store
    url, handler = gateway
    intake = Intake(chain, build_receipts(settings, chain))
    _walk(chain, intake, "res-1")
    new_webhook_secret(tmp_path / "other.secret")
    notifier = build_notifier(settings, chain, WebhookSender(url, read_webhook_secret(tmp_path / "other.secret")))
    assert notifier.deliver_once() == {"retrying": 6}  # the office sees why: "the webhook answered 401"
    assert handler.received == []
    assert handler.forged == ["No matching signature found"] * 6


def test_a_proxy_in_the_environment_never_sees_the_phones(store: Any, gateway: Any, secret: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    settings, chain = store
    url, handler = gateway
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there: a message through it would fail
    _walk(chain, Intake(chain, build_receipts(settings, chain)), "res-1")
    notifier = build_notifier(settings, chain, WebhookSender(url, secret, timeout=5))
    clock = Clock()
    notifier.clock = clock
    for _ in range(10):
        notifier.deliver_once()
        clock.now += timedelta(minutes=30)
    assert set(notifier.deliveries.deliveries().values()) == {"delivered"}
    assert {b["to"] for b in handler.received} == {PHONE}
