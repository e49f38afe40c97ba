"""`grievance notary`: the key holder's process that signs the Merkle log's head on a schedule and publishes each
checkpoint where the HTTP service and auditors read it."""

from __future__ import annotations

from pathlib import Path

import click

from adapters import composition
from adapters.audit.checkpoint import CheckpointError, load_signing_key
from adapters.audit.notary import Notary
from adapters.audit.publication import CheckpointShelf
from adapters.audit.transparency import NotExtended
from adapters.cli.session import EXIT_BROKEN, fail, opened, out, stop_on_signals
from adapters.cli.transparency import refuse_checkpoint
from adapters.kafka.checkpoints import CheckpointTopic


def register(main: click.Group) -> None:
    """Add this command to the `grievance` group."""
    main.add_command(notary)


@click.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The signing key file (from checkpoint-key); keep it off the database host.")  # fmt: skip
@click.option("--publish", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="The directory to publish checkpoints in; default GRIEVANCE_CHECKPOINTS_DIR.")  # fmt: skip
@click.option("--every", type=click.FloatRange(min=1), metavar="SECONDS",
              help="Sign again every SECONDS until stopped; once when not given.")  # fmt: skip
@click.option(
    "--kafka",
    "to_kafka",
    is_flag=True,
    help="Announce each checkpoint on Kafka too (GRIEVANCE_KAFKA_CHECKPOINTS_TOPIC, grievance.checkpoints).",
)
def notary(key_file: Path, directory: Path | None, every: float | None, to_kafka: bool) -> None:
    """Sign the log's head and publish it as DIR/<size>.checkpoint and DIR/latest.checkpoint whenever it has grown,
    on a schedule. A head that does not extend the last checkpoint published is never signed: exit 4, naming why."""
    try:
        signer = load_signing_key(key_file)
    except CheckpointError as e:
        refuse_checkpoint(e)
    with opened(log_level="info") as session:
        where = directory or session.settings.checkpoints_dir
        if where is None:
            fail("--publish: name the directory to publish in (or set GRIEVANCE_CHECKPOINTS_DIR)")
        topic = CheckpointTopic.connect(session.settings.kafka) if to_kafka else None
        keeper = Notary(composition.build_transparency(session.chain), signer, CheckpointShelf(where),
                        announce=[topic.announce] if topic else [])  # fmt: skip
        stop = stop_on_signals()
        while True:
            try:
                signed = keeper.sign_head()
            except NotExtended as e:
                fail(f"checkpoint: {e.finding.reason}; nothing signed", EXIT_BROKEN, error_code=e.finding.kind)
            except CheckpointError as e:
                refuse_checkpoint(e)
            if signed is not None:
                out.print(f"signed {signed.checkpoint.size:,} leaves, root {signed.checkpoint.root.hex()}: "
                          f"published in {where}")  # fmt: skip
            if every is None or stop.wait(every):
                if topic:
                    topic.close()
                return
