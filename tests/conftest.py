"""Shared fixtures: the shipped chart, a chain on each store, and per-test PostgreSQL schemas."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import psycopg
import pytest

from adapters.kafka.intake_sealing import make_intake_key
from adapters.kafka.settings import KafkaSettings
from adapters.kafka.signatures import KeyRole, add_key
from adapters.settings import SHIPPED_CHART, Settings
from adapters.storage.chart_file import load_chart
from engine.access import Principal, Role
from engine.chart import OrgChart
from engine.clock import PlaybackClock
from engine.commands import Command
from engine.service_chain import ServiceChain
from tests.kafka_broker import Broker

# The principal unit and integration tests apply commands as: an operator at the store, as the CLI is.
OPERATOR = Principal("test-operator", Role.OPERATOR)


COMMAND_TYPES: dict[str, type[Command]] = {cls.__struct_config__.tag: cls for cls in get_args(Command)}


def command(kind: str, **fields: Any) -> Command:
    """The command of `kind` with these fields, unchecked (a Struct's constructor validates nothing), so that
    the engine's own rules meet whatever a test sends: for tests that pick the kind as data."""
    return COMMAND_TYPES[kind](**fields)


CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 8, 30, tzinfo=CST)
PG_ADMIN = os.environ.get("GRIEVANCE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# The library reads os.environ too: keep a developer's own settings out of the tests.
for _name in [n for n in os.environ if n.startswith(("GRIEVANCE_", "POSTGRES_", "SQLITE_"))] + ["PERSISTENCE_MODULE"]:
    if _name != "GRIEVANCE_TEST_PG":
        os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def yongji() -> OrgChart:
    return load_chart(SHIPPED_CHART)


@pytest.fixture
def chain(yongji: OrgChart) -> Iterator[ServiceChain]:
    """A chain on the library's in-memory store: for domain rules, fast. Its clock is the tests' own, which a
    Scenario moves on as it acts."""
    app = ServiceChain({"PERSISTENCE_MODULE": "eventsourcing.popo"}, chart=yongji, clock=PlaybackClock(T0))
    yield app
    app.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test run's own on the local server, dropped at the end."""
    name = f"grievance_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL at {PG_ADMIN} is needed for the store tests: {e}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A fresh schema in the test run's database, as a GRIEVANCE_DATABASE_URL; dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = PG_ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/{pg_database}", autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{base}/{pg_database}?schema={schema}"
    with psycopg.connect(f"{base}/{pg_database}", autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Each store-facing test runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/grievances.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def stored_chain(database_url: str, yongji: OrgChart) -> Iterator[ServiceChain]:
    app = ServiceChain(Settings(database_url=database_url).store_env(), chart=yongji, clock=PlaybackClock(T0))
    yield app
    app.close()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One Tansu broker for the whole run; each test gets topics of its own (see `kafka`)."""
    broker = Broker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory: pytest.TempPathFactory, yongji: OrgChart) -> tuple[Path, Path]:
    """A key file the workers accept and an operator's import key in it (the tests play history older than the
    time bounds allow anyone else): (the key file, the private key)."""
    folder = tmp_path_factory.mktemp("keys")
    keys, private = folder / "kafka-keys.json", folder / "gateway.pem"
    add_key(keys, private, name="import-operator", role=KeyRole.OPERATOR, unit_id=None, chart=yongji)
    return keys, private


@pytest.fixture(scope="session")
def intake_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The engine's intake key, (private half, public half), that residents' data is sealed to on Kafka."""
    folder = tmp_path_factory.mktemp("intake")
    make_intake_key(folder / "intake.pem", folder / "intake.pub.pem")
    return folder / "intake.pem", folder / "intake.pub.pem"


@pytest.fixture
def kafka(kafka_broker: Broker, signing_keys: tuple[Path, Path], intake_key: tuple[Path, Path]) -> KafkaSettings:
    """Kafka settings with this test's own topics and consumer group on the shared broker, and the gateway's key
    to sign commands with."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap,
        commands_topic=f"{prefix}.commands",
        rejected_topic=f"{prefix}.commands.rejected",
        events_topic=f"{prefix}.events",
        worker_group=f"{prefix}-workers",
        partitions=4,
        batch_wait_ms=20,
        keys_file=signing_keys[0],
        signing_key=signing_keys[1],
        intake_private_key=intake_key[0],
        intake_public_key=intake_key[1],
    )


def grievance(db: Path, *args: str, input: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`grievance ARGS` on the SQLite file `db` (unless `env` names another store), as a user runs it."""
    env = {**os.environ, "GRIEVANCE_DATABASE_URL": f"sqlite:///{db}", **(env or {})}
    return subprocess.run([sys.executable, "-m", "adapters.cli", *args], env=env, capture_output=True, text=True,
                          input=input, timeout=300, check=False)  # fmt: skip


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store after `grievance demo`: Yongji's 2020, ending at 1,115 resolved (played once a run)."""
    db = tmp_path_factory.mktemp("demo") / "grievances.db"
    done = grievance(db, "demo")
    assert done.returncode == 0, done.stderr
    assert "1,115" in done.stdout
    (db.parent / "demo.out").write_text(done.stdout, encoding="utf-8")  # what it printed, for tests to read
    return db
