"""What a grievance's audit report says of the Merkle log: whether its events are in the latest checkpoint the
notary published, and signed by whom (only once the signature is checked here against the log's verifier keys),
or that the store's log does not bear that checkpoint out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from adapters.audit.checkpoint import CheckpointError, Verifier, parse_note, read_note, verified
from adapters.audit.notary import LATEST
from adapters.audit.transparency import NotExtended, Transparency
from adapters.storage.merkle_log import leaf_hash, verify_inclusion


def included_in_latest(transparency: Transparency, directory: Path, grievance_id: UUID, events: int,
                       verifiers: Sequence[Verifier] = ()) -> tuple[bool, str] | None:  # fmt: skip
    """(whether all is well, one sentence) for the report, or None when no checkpoint is published. It names a
    signer only once its signature checks against one of `verifiers` (GRIEVANCE_CHECKPOINT_VERIFIER_KEYS); with
    none given it says plainly that the checkpoint's signatures were not checked."""
    path = directory / LATEST
    if not path.exists():
        return None
    try:
        note = read_note(path)
        signed = verified(note, list(verifiers)) if verifiers else parse_note(note)
    except CheckpointError as e:
        if verifiers:
            return False, f"The latest published checkpoint is not the log's: {e.reason}."
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
    if verifiers:
        by = "signed by " + ", ".join(f"{v.name}+{v.key_hash.hex()}" for v in verifiers if signed.signed_by(v))
    else:
        by = ("its signature unverified here (this service was given no verifier key: "
              "GRIEVANCE_CHECKPOINT_VERIFIER_KEYS)")  # fmt: skip
    since = events - len(proved)
    later = f"; {since} written since are in none yet" if since else ""
    if not proved:
        return (
            True,
            f"No event is in the latest checkpoint ({cp.origin}, {cp.size:,} leaves) yet: all were written since.",
        )
    return True, (f"Versions 1–{len(proved)} are included in checkpoint {cp.origin} of {cp.size:,} leaves (root "
                  f"{cp.root.hex()[:16]}…), {by}{later}; check it offline with its proof.")  # fmt: skip
