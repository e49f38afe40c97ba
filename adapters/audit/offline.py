"""The auditor's offline check of `grievance prove --json`, with no access to the database and nothing but the
standard library and `cryptography`: the checkpoint's signature, each event's chained hash recomputed from its
stored bytes, and its RFC 9162 inclusion proof against the checkpoint's root.

    python -m adapters.audit.offline PROOF.json --verifier-key NAME+HASH+KEY [--verifier-key ...]

Exit 0 when everything checks, 4 (one line naming what) when something does not, 1 for unreadable input.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.audit.checkpoint import CheckpointError, Verifier, verified
from adapters.storage.merkle_log import leaf_hash, verify_inclusion

EXIT_OK, EXIT_INPUT, EXIT_BROKEN = 0, 1, 4
GENESIS = bytes(32)


def chained_hash(previous: bytes, grievance_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """README's formula, SHA-256(previous ‖ grievance id ‖ version ‖ len(topic) ‖ topic ‖ stored state), written
    here again rather than imported: the engine's copy needs the event store's library, which an auditor's
    machine need not have (a test holds the two equal)."""
    digest = hashlib.sha256(previous)
    digest.update(grievance_id.bytes)
    digest.update(version.to_bytes(8, "big"))
    digest.update(len(topic.encode()).to_bytes(4, "big"))
    digest.update(topic.encode())
    digest.update(state)
    return digest.digest()


class Broken(Exception):
    """Something in the proof does not check; the message names it as `FIELD: REASON`."""


def check(document: dict[str, Any], verifiers: Sequence[Verifier]) -> list[str]:
    """What checked, a line each; raises Broken at the first thing that does not, CheckpointError for a
    checkpoint that cannot be read or is signed by none of the verifiers."""
    signed = verified(str(document.get("checkpoint", "")), list(verifiers))
    cp = signed.checkpoint
    names = ", ".join(sorted({v.name for v in verifiers if signed.signed_by(v)}))
    lines = [f"ok: checkpoint {cp.origin} of {cp.size:,} leaves, root {cp.root.hex()}, signed by {names}"]
    if document.get("tree_size") != cp.size or document.get("root_hash") != cp.root.hex():
        raise Broken("tree_size: the document's size or root is not its checkpoint's")
    try:
        gid = UUID(str(document["grievance_id"]))
        events = list(document["events"])
    except (KeyError, ValueError, TypeError):
        raise Broken("grievance_id: missing or not a UUID, or no events list") from None
    previous = GENESIS
    for n, event in enumerate(events, start=1):
        try:
            version, index = int(event["version"]), int(event["leaf_index"])
            state = base64.b64decode(event["state"], validate=True)
            stated = bytes.fromhex(event["chained_hash"])
            proof = [bytes.fromhex(h) for h in event["inclusion_proof"]]
            topic = str(event["topic"])
        except (KeyError, ValueError, TypeError, binascii.Error):
            raise Broken(f"events[{n - 1}]: a field is missing or malformed") from None
        if version != n:
            raise Broken(f"events[{n - 1}].version: {version}, where version {n} was expected (every earlier one too)")
        previous = chained_hash(previous, gid, version, topic, state)
        if previous != stated:
            raise Broken(f"events[{n - 1}].chained_hash: version {version}'s stored bytes recompute another hash")
        if not verify_inclusion(index, cp.size, leaf_hash(previous), proof, cp.root):
            raise Broken(f"events[{n - 1}].inclusion_proof: version {version} is not leaf {index} of the checkpoint")
        lines.append(f"ok: version {version} ({topic.rsplit('.', 1)[-1]}) is leaf {index:,} of the checkpoint")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.audit.offline", description=__doc__.splitlines()[0])
    parser.add_argument("proof", type=Path, help="the JSON printed by grievance prove ID --checkpoint FILE --json")
    parser.add_argument("--verifier-key", action="append", required=True, help="a key the checkpoint may be signed by")
    args = parser.parse_args(argv)
    try:
        verifiers = [Verifier.parse(k, "--verifier-key") for k in args.verifier_key]
        document = json.loads(args.proof.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    except CheckpointError as e:
        print(f"error: {e} [bad_checkpoint]", file=sys.stderr)
        return EXIT_INPUT
    except (OSError, ValueError) as e:
        print(f"error: proof: {args.proof} cannot be read as JSON: {e} [invalid_value]", file=sys.stderr)
        return EXIT_INPUT
    try:
        lines = check(document, verifiers)
    except CheckpointError as e:
        print(f"error: {e} [broken]", file=sys.stderr)
        return EXIT_BROKEN
    except Broken as e:
        print(f"error: {e} [broken]", file=sys.stderr)
        return EXIT_BROKEN
    print("\n".join(lines))
    print(f"intact: grievance {document['grievance_id']}'s {len(lines) - 1} events are in the signed log as shown")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
