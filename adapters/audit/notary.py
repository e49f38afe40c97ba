"""The notary: signs the Merkle log's head on a schedule and publishes each checkpoint in a directory, never
signing a head that does not extend the last one it published (it witnesses its own log first)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from adapters.audit.checkpoint import Checkpoint, SignedCheckpoint, Signer, parse_note, read_note, sign
from adapters.audit.transparency import Transparency

LATEST = "latest"


@dataclass
class Notary:
    """One signing key, one log, one directory of published checkpoints (`latest`, and `checkpoint.<size>`)."""

    signer: Signer
    transparency: Transparency
    directory: Path

    def last(self) -> SignedCheckpoint | None:
        """The checkpoint published last, or None before the first."""
        path = self.directory / LATEST
        return parse_note(read_note(path, str(path)), str(path)) if path.exists() else None

    def sign_if_grown(self) -> SignedCheckpoint | None:
        """Sign and publish the head if the log grew since the last checkpoint published (None if it did not);
        raises NotExtended, publishing nothing, when the head does not extend it."""
        size, root = self.transparency.head()
        new = Checkpoint(self.signer.name, size, root)
        last = self.last()
        if last is not None:
            if last.checkpoint.size == size and last.checkpoint.root == root:
                return None
            self.transparency.consistency(last.checkpoint, new)
        signed = sign(new, self.signer)
        self._publish(f"checkpoint.{size}", signed.note())
        self._publish(LATEST, signed.note())
        return signed

    def _publish(self, name: str, text: str) -> None:
        # Written aside and renamed: a reader of the directory sees a whole checkpoint or the one before.
        partial = self.directory / f".{name}.partial"
        with partial.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.directory / name)
