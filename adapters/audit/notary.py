"""The notary: signs the Merkle log's head on a schedule and publishes each new checkpoint, and refuses to sign a
head that does not extend the last one it published (so its key never vouches for two histories)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.audit.checkpoint import SignedCheckpoint, Signer
from adapters.audit.publication import CheckpointShelf
from adapters.audit.transparency import Transparency


@dataclass
class Notary:
    """One log's signer and where it publishes."""

    transparency: Transparency
    signer: Signer
    shelf: CheckpointShelf
    # Where else each new checkpoint goes (a Kafka topic), before the shelf: should one fail, the head is signed
    # again next round, to the same note (Ed25519 signatures are deterministic), and announced again.
    announce: Sequence[Callable[[SignedCheckpoint], None]] = ()

    def sign_head(self) -> SignedCheckpoint | None:
        """Sign and publish the head when it has grown since the last checkpoint published (None when it has not);
        NotExtended, signing nothing, when the log no longer extends that checkpoint."""
        last = self.shelf.latest()
        signed = self.transparency.checkpoint(self.signer)
        if last is not None and last.checkpoint.origin == signed.checkpoint.origin:
            # Raises NotExtended when the log was cut or rewritten under the last checkpoint.
            self.transparency.consistency(last.checkpoint, signed.checkpoint)
            if last.checkpoint.size == signed.checkpoint.size:
                return None
        for send in self.announce:
            send(signed)
        self.shelf.publish(signed)
        return signed
