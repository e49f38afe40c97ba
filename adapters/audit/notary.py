"""The notary: signs the Merkle log's head on a schedule and publishes each new checkpoint, and refuses to sign a
head that does not extend the last one it published (so its key never vouches for two histories)."""

from __future__ import annotations

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
        self.shelf.publish(signed)
        return signed
