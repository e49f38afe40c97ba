"""`grievance notary --kafka` announces each new signed checkpoint on the checkpoints topic, keyed by the log's
origin, byte for byte the note it publishes in its directory; an unchanged head is not announced again."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from adapters.audit.checkpoint import new_signing_key, verified
from adapters.composition import build_chain
from adapters.kafka.settings import KafkaSettings
from adapters.settings import Settings
from tests.kafka_tools import read_topic
from tests.scenario import Scenario

ORIGIN = "grievances.test/log"


def test_each_new_checkpoint_is_announced_on_kafka(kafka: KafkaSettings, tmp_path: Path) -> None:
    # This test's own topic, beside the fixture's own others.
    kafka = replace(kafka, checkpoints_topic=kafka.events_topic.removesuffix(".events") + ".checkpoints")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/g.db", kafka=kafka, checkpoints_dir=tmp_path / "published")
    signer = new_signing_key(tmp_path / "notary.key", ORIGIN)
    env = {**os.environ, **settings.as_env()}

    def notary() -> str:
        done = subprocess.run([sys.executable, "-m", "adapters.cli", "notary", "--key", str(tmp_path / "notary.key"),
                               "--kafka"], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return (tmp_path / "published" / "latest.checkpoint").read_text()

    chain = build_chain(settings)
    try:
        Scenario(chain).answered_then_reopened()
        first = notary()
        assert notary() == first
        Scenario(chain).answered_then_reopened()
        second = notary()
    finally:
        chain.close()
    records = read_topic(kafka, kafka.checkpoints_topic, expected=2)
    assert [r.value.decode() for r in records] == [first, second]
    assert {r.key for r in records} == {ORIGIN.encode()}
    assert [verified(r.value.decode(), [signer.verifier]).checkpoint.size for r in records] == [7, 14]
