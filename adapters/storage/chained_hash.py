"""The formula of an event's chained hash, over plain values: what the stores write and an auditor recomputes.

hash(n) = SHA-256(hash(n-1) ‖ grievance id (16 bytes) ‖ n (8 bytes, big-endian) ‖ len(topic) (4 bytes, big-endian)
‖ topic (UTF-8) ‖ stored state), with hash(0) = 32 zero bytes. Only the standard library, so the offline verifier
computes it exactly as the stores do.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

GENESIS = bytes(32)


def chained_hash(previous: bytes, grievance_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """The hash of version `version` of a grievance's events, chained to `previous` (the hash of the one before)."""
    encoded = topic.encode()
    digest = hashlib.sha256(previous)
    digest.update(grievance_id.bytes)
    digest.update(version.to_bytes(8, "big"))
    digest.update(len(encoded).to_bytes(4, "big"))
    digest.update(encoded)
    digest.update(state)
    return digest.digest()
