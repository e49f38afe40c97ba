"""`grievance notary --kafka` announces each new signed checkpoint on the checkpoints topic, keyed by the log's
origin, byte for byte the note it publishes in its directory; a notary restarted announces its last one again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from adapters.audit.checkpoint import new_signing_key, verified
from adapters.audit.notary import LATEST
from adapters.composition import build_chain
from adapters.kafka.settings import KafkaSettings
from adapters.settings import Settings
from tests.kafka_tools import read_topic, wait_for
from tests.scenario import Scenario

ORIGIN = "grievances.test/log"


def test_each_new_checkpoint_is_announced_on_kafka(kafka: KafkaSettings, tmp_path: Path) -> None:
    # This test's own topic, beside the fixture's others.
    kafka = replace(kafka, checkpoints_topic=kafka.events_topic.removesuffix(".events") + ".checkpoints")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/g.db", kafka=kafka)
    signer = new_signing_key(tmp_path / "notary.key", ORIGIN)
    published = tmp_path / "published"
    env = {**os.environ, **settings.as_env()}

    def notary() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "adapters.cli", "notary", "--key", str(tmp_path / "notary.key"),
                                 "--every", "0.2", "--dir", str(published), "--kafka"], env=env,
                                stderr=(tmp_path / "notary.log").open("ab"), stdout=subprocess.DEVNULL)  # fmt: skip

    def stop(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, (tmp_path / "notary.log").read_text()

    def published_size() -> int:
        path = published / LATEST
        return verified(path.read_text(), [signer.verifier]).checkpoint.size if path.exists() else 0

    chain = build_chain(settings)
    try:
        Scenario(chain).answered_then_reopened()
        running = notary()
        wait_for(lambda: published_size() == 7, 60, "the first checkpoint", [running])
        first = (published / LATEST).read_text()
        Scenario(chain).answered_then_reopened()
        wait_for(lambda: published_size() == 14, 60, "the second checkpoint", [running])
        second = (published / LATEST).read_text()
        stop(running)
        assert [r.value.decode() for r in read_topic(kafka, kafka.checkpoints_topic, expected=2)] == [first, second]
        # Restarted (say, after a crash between publishing and announcing): the last one is announced again.
        restarted = notary()
        wait_for(lambda: len(read_topic(kafka, kafka.checkpoints_topic, timeout=2)) == 3, 60, "the re-announcement",
                 [restarted])  # fmt: skip
        stop(restarted)
    finally:
        chain.close()
    records = read_topic(kafka, kafka.checkpoints_topic, expected=3)
    assert [r.value.decode() for r in records] == [first, second, second]
    assert {r.key for r in records} == {ORIGIN.encode()}
