"""A witness: an auditor who cosigns each checkpoint of the log only once it is shown consistent with the last
one they cosigned, keeping that last one in a state file of their own.

Whoever can rewrite the database could sign a second, rewritten history with the log's key; a checkpoint
cosigned by witnesses who each saw the log only grow cannot be one of two such histories.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from adapters.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    Signer,
    Verifier,
    cosign,
    parse_note,
    read_note,
)
from adapters.storage.merkle_log import verify_consistency

# Given the last checkpoint cosigned and the new one: the RFC 9162 consistency proof between them.
ProofSource = Callable[[Checkpoint, Checkpoint], Sequence[bytes]]


class NotConsistent(Exception):
    """The new checkpoint is not an append-only extension of the last one this witness cosigned."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Witness:
    """One witness of one log: its signing key and the file holding the last checkpoint it cosigned."""

    signer: Signer
    state: Path

    def last(self) -> SignedCheckpoint | None:
        """The last checkpoint this witness cosigned, or None before its first."""
        if not self.state.exists():
            return None
        return parse_note(read_note(self.state, "--state"), "--state")

    def witness(self, new: SignedCheckpoint, log: Verifier, proof_of: ProofSource, now: int) -> SignedCheckpoint:
        """`new` with this witness's cosignature, once it is the log's and consistent with the last one cosigned
        (the first is taken on trust); the state then holds it. Two runs of one witness at once take turns, so
        the second checks its checkpoint against the first's, never both against the one before."""
        if not new.signed_by(log):
            raise CheckpointError("checkpoint", f"not signed by the log's key {log.encoded()}")
        with self._turn():
            return self._witness(new, proof_of, now)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        # An OS lock on a file beside the state (never the state itself, which is replaced by a rename), held
        # from reading the last checkpoint to keeping the new one; released by the OS if the process dies.
        lock = self.state.with_name(self.state.name + ".lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise CheckpointError("--state", f"{lock} cannot be opened to lock the state: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _witness(self, new: SignedCheckpoint, proof_of: ProofSource, now: int) -> SignedCheckpoint:
        last = self.last()
        if last is not None:
            old, cp = last.checkpoint, new.checkpoint
            if old.origin != cp.origin:
                raise CheckpointError("checkpoint", f"is of the log {cp.origin!r}; this witness follows {old.origin!r}")
            if cp.size < old.size:
                raise NotConsistent("rolled_back", f"the checkpoint has {cp.size:,} leaves, fewer than the "
                                    f"{old.size:,} this witness cosigned last")  # fmt: skip
            if not verify_consistency(old.size, cp.size, list(proof_of(old, cp)), old.root, cp.root):
                raise NotConsistent("not_consistent", f"the checkpoint of {cp.size:,} leaves does not extend the one "
                                    f"of {old.size:,} this witness cosigned last: the log was rewritten")  # fmt: skip
        cosigned = cosign(new, self.signer, now)
        self._keep(cosigned)
        return cosigned

    def _keep(self, cosigned: SignedCheckpoint) -> None:
        # Written aside and renamed, so a crash leaves the old state or the new one, never half of either.
        partial = self.state.with_name(self.state.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(cosigned.note())
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, self.state)
