"""Kafka settings from the environment: defaults, and a clear error naming the variable at fault."""

from __future__ import annotations

import pytest

from adapters.kafka.settings import KafkaSettings
from engine.errors import ConfigurationError


def test_defaults_are_the_documented_topics_and_group() -> None:
    k = KafkaSettings.from_variables({})
    assert (k.commands_topic, k.rejected_topic, k.events_topic) == (
        "grievance.commands",
        "grievance.commands.rejected",
        "grievance.events",
    )
    assert (k.worker_group, k.servers) == ("grievance-workers", ["localhost:9092"])


def test_settings_survive_a_trip_through_the_environment() -> None:
    k = KafkaSettings(bootstrap_servers="a:1,b:2", partitions=12, batch_size=10, batch_wait_ms=0)
    again = KafkaSettings.from_variables(k.as_env())
    assert again == k
    assert again.servers == ["a:1", "b:2"]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("GRIEVANCE_KAFKA_PARTITIONS", "many", "not a whole number"),
        ("GRIEVANCE_KAFKA_PARTITIONS", "0", "less than 1"),
        ("GRIEVANCE_KAFKA_BATCH_WAIT_MS", "-5", "less than 0"),
        ("GRIEVANCE_KAFKA_COMMANDS_TOPIC", "  ", "must not be empty"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{variable}: .*{says}|{variable}: {says}"):
        KafkaSettings.from_variables({variable: value})
