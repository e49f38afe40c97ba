"""What a grievance's audit report says of the Merkle log: whether its events are in the latest checkpoint the
notary published, and signed by whom, or that the store's log does not bear that checkpoint out."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from adapters.audit.checkpoint import CheckpointError, parse_note, read_note
from adapters.audit.notary import LATEST
from adapters.audit.transparency import NotExtended, Transparency
from adapters.storage.merkle_log import leaf_hash, verify_inclusion


def included_in_latest(transparency: Transparency, directory: Path, grievance_id: UUID,
                       events: int) -> tuple[bool, str] | None:  # fmt: skip
    """(whether all is well, one sentence) for the report, or None when no checkpoint is published. The names and
    key hashes are those the note carries: its signatures are the reader's to check, with the log's verifier key."""
    path = directory / LATEST
    if not path.exists():
        return None
    try:
        signed = parse_note(read_note(path))
    except CheckpointError as e:
        return False, f"The latest published checkpoint cannot be read: {e.reason}."
    cp = signed.checkpoint
    try:
        proved = transparency.prove(grievance_id, cp)
    except NotExtended as e:
        return (
            False,
            f"The store's log does not bear out the latest checkpoint of {cp.size:,} leaves: {e.finding.reason}.",
        )
    if not all(verify_inclusion(p.leaf_index, cp.size, leaf_hash(p.chained_hash), p.inclusion_proof, cp.root)
               for p in proved):  # fmt: skip
        return False, f"An inclusion proof against the latest checkpoint of {cp.size:,} leaves does not check."
    by = ", ".join(f"{name}+{key_hash.hex()}" for name, key_hash, _ in signed.signatures)
    since = events - len(proved)
    later = f"; {since} written since are in none yet" if since else ""
    if not proved:
        return (
            True,
            f"No event is in the latest checkpoint ({cp.origin}, {cp.size:,} leaves) yet: all were written since.",
        )
    return True, (f"Versions 1–{len(proved)} are included in checkpoint {cp.origin} of {cp.size:,} leaves (root "
                  f"{cp.root.hex()[:16]}…), signed by {by}{later}; check it offline with its proof.")  # fmt: skip
