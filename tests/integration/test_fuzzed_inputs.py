"""Hypothesis-generated and malformed input into every other entry point: the Kafka worker's messages, HTTP
command bodies, the CLI's arguments and the organisation-chart loader. Nothing crashes; every bad input
gets a clear error naming its field; nothing stored changes for what is refused."""

from __future__ import annotations

import json
import re
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.structs import TopicPartition
from litestar.testing import TestClient

from adapters.cli import main
from adapters.composition import build_chain, build_http_services, build_key_book
from adapters.http.app import create_app
from adapters.http.tokens import TokenBook, TokenEntry, digest
from adapters.intake import Intake
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import CommandSigner
from adapters.kafka.worker import BatchTally, CommandWorker
from adapters.settings import SHIPPED_CHART, Settings
from adapters.storage.chart_file import load_chart
from engine.access import Role
from engine.errors import ConfigurationError
from engine.service_chain import ServiceChain
from tests.conftest import T0
from tests.scenario import HOUSEHOLD

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
Record = namedtuple("Record", "topic partition offset key value headers")
GID = "00000000-0000-0000-0000-00000000aaaa"
VALID = {"kind": "report", "command_id": "c", "grievance_id": GID, "actor": "w", "occurred_at": T0.isoformat(),
         "unit_id": HOUSEHOLD, "category": "parking", "title": "t", "description": "d"}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Valid commands with one field replaced, dropped or added: the near misses real clients send.
near_misses = st.builds(
    lambda field, value, drop: {k: v for k, v in {**VALID, field: value}.items() if k != drop},
    st.sampled_from([*VALID, "resident", "extra"]),
    json_values,
    st.sampled_from([None, *VALID]),
)
payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_misses.map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceChain]:
    db = tmp_path_factory.mktemp("fuzz") / "g.db"
    app = build_chain(Settings(database_url=f"sqlite:///{db}", durability="off"))
    yield app
    app.close()


class Copies:
    """Stands in for the rejected topic's producer."""

    def __init__(self) -> None:
        self.sent: list[dict[str, bytes]] = []

    def send(self, topic: str, *, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> Any:
        self.sent.append(dict(headers))
        return self

    def get(self, timeout: float) -> None:
        return None

    def flush(self) -> None:
        return None


@FUZZ
@given(messages=st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=40), st.just(GID.encode())), payloads),
                         min_size=1, max_size=8))  # fmt: skip
def test_the_worker_copies_every_refused_message_with_its_reason_and_carries_on(
    chain: ServiceChain, messages: list[tuple[bytes | None, bytes]], signing_keys: tuple[Path, Path]
) -> None:
    copies = Copies()
    keys = build_key_book(Settings(kafka=KafkaSettings(keys_file=signing_keys[0])), chain.chart)
    worker = CommandWorker(Intake(chain), consumer=None, producer=copies, settings=KafkaSettings(), keys=keys)
    signer = CommandSigner.from_file(signing_keys[1])
    tp = TopicPartition("grievance.commands", 0)
    position = chain.tracked("kafka:grievance.commands[0]")
    start = 0 if position is None else position + 1
    records = [Record(tp.topic, 0, start + i, key, value, signer.headers(tp.topic, key, value))
               for i, (key, value) in enumerate(messages)]  # fmt: skip
    tally = BatchTally()
    worker._apply_partition(tp, records, tally)
    assert tally.applied + tally.duplicates + tally.rejected == len(messages)
    assert len(copies.sent) == tally.rejected
    for headers in copies.sent:
        assert headers["error.code"]
        assert headers["error.field"]
        assert headers["error.reason"]
    assert chain.tracked("kafka:grievance.commands[0]") == records[-1].offset


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient[Any], Any]]:
    db = tmp_path_factory.mktemp("fuzz-http") / "g.db"
    services, _ = build_http_services(Settings(database_url=f"sqlite:///{db}", durability="off"))
    services.tokens = TokenBook([TokenEntry(name="w", role=Role.GRID_WORKER, unit_id="st-chengxi",
                                            sha256=digest("fuzz"))], services.chain.chart)  # fmt: skip
    with TestClient(app=create_app(services)) as client:
        yield client, services
    services.chain.close()


@FUZZ
@given(body=st.one_of(payloads, st.lists(near_misses, max_size=4).map(lambda v: json.dumps(v).encode())))
def test_any_command_body_over_http_gets_an_answer_never_a_server_error(
    http: tuple[TestClient[Any], Any], body: bytes
) -> None:
    client, services = http
    before = services.chain.recorder.max_notification_id()
    response = client.post("/api/v1/commands", content=body, headers={"Authorization": "Bearer fuzz"})
    assert response.status_code in (200, 400, 403, 404, 422), response.text
    if response.status_code >= 400:
        assert response.json()["field"]
        assert services.chain.recorder.max_notification_id() == before


COMMANDS = ["report", "claim", "progress", "escalate", "resolve", "reply", "rate", "show", "history", "verify",
            "export", "dashboard", "schema", "forget-resident", "check", "submit", "--help", "projections"]  # fmt: skip
OPTIONS = ["--unit", "--category", "--title", "--description", "--mode", "--claimant", "--rating", "--version",
           "--at", "--json", "--all", "--format", "--to", "--reason", "--summary", "--actor", "--command-id",
           "--grievance-id", "--resident-id", "status"]  # fmt: skip
VALUES = ["parking", "member", "satisfied", "2026-03-02T08:30:00+08:00", "0", "-1", GID, HOUSEHOLD]
words = st.one_of(st.sampled_from(OPTIONS), st.text(max_size=12), st.sampled_from(VALUES))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(argv=st.tuples(st.sampled_from(COMMANDS), st.lists(words, max_size=6)).map(lambda t: [t[0], *t[1]]))
def test_the_command_line_answers_any_arguments_with_an_exit_code_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, argv: list[str]
) -> None:
    db = tmp_path_factory.getbasetemp() / "cli-fuzz.db"
    result = CliRunner().invoke(main, argv, env={"GRIEVANCE_DATABASE_URL": f"sqlite:///{db}"}, input="{}")
    assert result.exit_code in (0, 1, 2, 3, 4, 5), (argv, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exception)
    if result.exit_code in (1, 2, 3, 5):  # refused, unusable, infrastructure, partly refused: said so, with a code
        errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
        assert errors, (argv, result.stderr)
        assert all(re.match(r"^error: .+: .+ \[[a-z_]+\]$", line) for line in errors), (argv, result.stderr)


def shipped_units() -> list[dict[str, Any]]:
    units: list[dict[str, Any]] = json.loads(SHIPPED_CHART.read_text())["units"]
    return units


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(document=st.one_of(
    json_values,
    st.builds(lambda units: {"units": units}, st.lists(st.dictionaries(
        st.sampled_from(["id", "name", "level", "parent", "x"]), json_values | st.sampled_from(
            ["lg", "st-chengxi", "street_committee", "community", "leading_group"])), max_size=5)),
    st.builds(lambda i, field, value: {"units": [
        {**u, field: value} if n == i else u for n, u in enumerate(shipped_units()[:40])]},
        st.integers(0, 39), st.sampled_from(["id", "name", "level", "parent"]),
        json_values | st.sampled_from(["lg", "st-chengxi", "", "cm-chengxi-01"])),
))  # fmt: skip
def test_the_chart_loader_refuses_any_bad_chart_naming_what_is_wrong(
    tmp_path_factory: pytest.TempPathFactory, document: Any
) -> None:
    path = tmp_path_factory.getbasetemp() / "chart.json"
    path.write_text(json.dumps(document))
    outcome: Any
    try:
        outcome = load_chart(path)
    except ConfigurationError as refused:
        outcome = refused
    if isinstance(outcome, ConfigurationError):
        assert str(outcome).startswith(f"{path}: ")
        assert len(str(outcome)) > len(str(path)) + 5
    else:
        assert outcome.root.level.value == "leading_group"


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"", b"units = [", b'{"units": "no"}', b"[1, 2]"])
def test_the_chart_loader_refuses_unreadable_files(tmp_path: Path, raw: bytes) -> None:
    for suffix in (".json", ".toml"):
        path = tmp_path / f"chart{suffix}"
        path.write_bytes(raw)
        with pytest.raises(ConfigurationError, match=str(path)):
            load_chart(path)
