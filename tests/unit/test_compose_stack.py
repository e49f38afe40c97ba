"""compose.yaml cannot be run here (no Docker engine), so it is checked by reading it: every engine
service runs a command the package has, with options it takes, configured by settings it understands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from adapters.cli import main
from adapters.kafka.settings import KafkaSettings
from adapters.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STACK: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = STACK["services"]
ENGINE = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("grievance-chain")}


def resolve(argv: list[str]) -> click.Context:
    """Parse `grievance ARGS…` as the CLI would, without running it; raises if a command or option is wrong."""
    assert argv[0] == "grievance", f"{argv} does not run the package's console script"
    command: click.Command = main
    name, tokens, parent = "grievance", argv[1:], None
    while isinstance(command, click.Group):  # the groups here take no options of their own
        assert tokens, f"{argv} names a group, not a command"
        parent = click.Context(command, info_name=name, parent=parent)
        sub = command.get_command(parent, tokens[0])
        assert sub is not None, f"grievance has no command {tokens[0]!r}"
        command, name, tokens = sub, tokens[0], tokens[1:]
    return command.make_context(name, list(tokens), parent=parent)


def test_the_stack_has_kafka_postgres_two_workers_the_relay_projections_supervision_and_http() -> None:
    assert {"kafka", "postgres"} <= set(SERVICES)
    commands = sorted(" ".join(s["command"][1:]) for s in ENGINE.values())
    assert commands == [
        "projections run",
        "relay",
        "serve --host 0.0.0.0 --port 8311 --no-project",
        "supervise --every 300",
        "worker",
        "worker",
    ]
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, no ZooKeeper"


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_each_engine_service_runs_a_real_command_of_the_package(name: str) -> None:
    service = ENGINE[name]
    resolve(service["command"])
    resolve(service["healthcheck"]["test"][1:])


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_each_engine_service_is_configured_by_settings_the_engine_reads(name: str) -> None:
    env = {k: str(v) for k, v in ENGINE[name]["environment"].items()}
    assert all(k.startswith("GRIEVANCE_") for k in env)
    settings = Settings.from_env(env)
    kafka = KafkaSettings.from_variables(env)
    assert settings.store_env()["POSTGRES_HOST"] == "postgres"
    assert kafka.bootstrap_servers == "kafka:9092"
    assert kafka.partitions >= 2, "two workers need at least two partitions to share"
    assert set(ENGINE[name]["depends_on"]) == {"kafka", "postgres"}
    assert all(d["condition"] == "service_healthy" for d in ENGINE[name]["depends_on"].values())


def test_every_service_has_a_health_check_and_the_image_builds_from_this_repository() -> None:
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("engine", "projections", "adapters", "schemas"):
        assert f"COPY {package} {package}" in dockerfile
    assert {s["build"] for s in ENGINE.values()} == {"."}


def test_a_misspelt_command_would_be_caught() -> None:
    with pytest.raises((AssertionError, click.UsageError)):
        resolve(["grievance", "wroker"])
    with pytest.raises(click.UsageError):
        resolve(["grievance", "supervise", "--evry", "3"])
