"""Where signed checkpoints are published: a directory holding each one as `<size>.checkpoint`, and the newest as
`latest.checkpoint`, which the HTTP service reads; the notary writes it, the signing key stays with the notary."""

from __future__ import annotations

import os
from pathlib import Path

from adapters.audit.checkpoint import CheckpointError, SignedCheckpoint, parse_note, read_note

LATEST = "latest.checkpoint"


class CheckpointShelf:
    """The published checkpoints of one log, in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def publish(self, signed: SignedCheckpoint) -> Path:
        """Keep `signed` as `<size>.checkpoint` and make it the latest; each file is written aside and renamed, so a
        reader sees the old checkpoint or the new one, never part of either."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{signed.checkpoint.size}.checkpoint"
            self._write(path, signed.note())
            self._write(self.directory / LATEST, signed.note())
        except OSError as e:
            raise CheckpointError("--publish", f"{self.directory} cannot be written: {e.strerror}") from None
        return path

    def latest_note(self) -> str | None:
        """The latest checkpoint's note as published, or None before the first."""
        path = self.directory / LATEST
        if not path.exists():
            return None
        return read_note(path, "checkpoint")

    def latest(self) -> SignedCheckpoint | None:
        """The latest checkpoint, read (its signature is the reader's to check), or None before the first."""
        note = self.latest_note()
        return None if note is None else parse_note(note)

    @staticmethod
    def _write(path: Path, text: str) -> None:
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
