"""Witnesses' cosignatures of checkpoints, as C2SP tlog-cosignature v1 specifies them for Ed25519.

A cosignature is one more signed-note line on a checkpoint: key ID SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4],
then a big-endian u64 timestamp and the Ed25519 signature of "cosignature/v1\\ntime T\\n" followed by the
checkpoint's text. It says that, at time T, this was the largest tree the witness had seen consistent with every
earlier one. Only the standard library and `cryptography`, so the offline verifier can check them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from adapters.audit.checkpoint import ED25519, CheckpointError, SignedCheckpoint, Signer

COSIGNATURE_V1 = b"\x04"
TIMESTAMP_MAX = 2**63 - 1


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_V1 + public).digest()[:4]


def signed_message(text: str, timestamp: int) -> bytes:
    """What a v1 cosignature signs: the header line, the time line, then the checkpoint's whole text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class CosignerKey:
    """A witness's public key, which checks its cosignatures."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public)

    def encoded(self) -> str:
        """The verifier key of signature type 0x04: `<name>+<8 hex of key ID>+<base64(0x04 ‖ public key)>`."""
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(COSIGNATURE_V1 + self.public).decode()}"

    @classmethod
    def of(cls, signer: Signer) -> CosignerKey:
        return cls(signer.name, signer.verifier.public)

    @classmethod
    def parse(cls, encoded: str, field: str = "witness_key") -> CosignerKey:
        """A cosigner's verifier key: of type 0x04, or a plain Ed25519 note key (0x01) used as one, as
        transparency-dev's VKeyToCosignatureV1 allows; each checked against its own key hash."""
        parts = encoded.strip().split("+", 2)
        if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
            raise CheckpointError(field, "not <name>+<key hash>+<key>")
        name, hash_hex, key = parts
        try:
            raw = base64.b64decode(key, validate=True)
            stated = bytes.fromhex(hash_hex)
        except (binascii.Error, ValueError):
            raise CheckpointError(field, "its key hash or key is not hex and base64") from None
        if len(raw) != 33 or raw[:1] not in (ED25519, COSIGNATURE_V1):
            raise CheckpointError(field, "not an Ed25519 key (0x01 or 0x04, and 32 bytes)")
        expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
        if stated != expected:
            raise CheckpointError(field, "its key hash does not match its name and key")
        return cls(name, raw[1:])

    def timestamp_of(self, signed: SignedCheckpoint) -> int | None:
        """The time of this witness's valid cosignature on the checkpoint, or None when it has none."""
        for name, key_id, signature in signed.signatures:
            if name != self.name or key_id != self.key_id or len(signature) != 72:
                continue
            timestamp = int.from_bytes(signature[:8], "big")
            if timestamp > TIMESTAMP_MAX:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(self.public).verify(
                    signature[8:], signed_message(signed.text, timestamp)
                )
            except InvalidSignature:
                continue
            return timestamp
        return None


def cosign(signed: SignedCheckpoint, signer: Signer, timestamp: int) -> SignedCheckpoint:
    """The checkpoint with this witness's cosignature at `timestamp` (POSIX seconds) added after its signatures;
    an earlier cosignature of the same key is replaced."""
    if not 0 <= timestamp <= TIMESTAMP_MAX:
        raise CheckpointError("timestamp", f"{timestamp} is not a POSIX time a cosignature can carry")
    key = CosignerKey.of(signer)
    line = (signer.name, key.key_id, timestamp.to_bytes(8, "big") + signer.sign(signed_message(signed.text, timestamp)))
    kept = tuple(s for s in signed.signatures if (s[0], s[1]) != (key.name, key.key_id))
    return SignedCheckpoint(signed.checkpoint, signed.text, (*kept, line))
