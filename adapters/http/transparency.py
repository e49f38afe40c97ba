"""The Merkle log over HTTP: the latest checkpoint the notary published, a grievance's proof against it (the JSON of
`grievance prove --json`, which the offline verifier checks), and RFC 9162 consistency proofs between tree sizes.

The service holds no signing key: it serves what the notary signed, and proofs anyone can check against it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Response
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.exceptions import ValidationException
from litestar.params import FromPath, QueryParameter
from litestar.plugins.problem_details import ProblemDetailsException

from adapters.audit.checkpoint import SignedCheckpoint, parse_note, read_note
from adapters.audit.notary import LATEST
from adapters.audit.transparency import NotExtended, Transparency, proof_document
from adapters.http.grievances import _readable
from adapters.http.problems import PROBLEM_BASE, problem_responses
from adapters.http.problems import api_get as get
from adapters.http.services import Reader, Services, services
from adapters.storage.merkle_log import MissingNode, consistency_proof, tree_head
from engine.errors import InvalidValue

# Larger than any log this engine will hold, and within every store's integer range.
MAX_TREE_SIZE = 2**53
# A tree size as the query spells it; read here (not by the framework) so that a bad one is named by its query name.
SIZE = {"pattern": "^[0-9]{1,16}$"}


def _size(field: str, text: str) -> int:
    """A tree size, or a 400 naming the query parameter."""
    if not (text.isascii() and text.isdigit() and len(text) <= 16) or int(text) > MAX_TREE_SIZE:
        reason = "not a tree size (a whole number from 0)"
        raise ValidationException(
            detail=f"{field}: {text[:40]!r} is {reason}", extra=[{"key": field, "message": reason}]
        )
    return int(text)


class ProvedEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One event inside the checkpoint: what recomputes its chained hash, and its RFC 9162 inclusion proof."""

    version: int
    leaf_index: int
    chained_hash: str
    topic: str
    state: str
    inclusion_proof: list[str]


class GrievanceProof(msgspec.Struct, kw_only=True, frozen=True):
    """`grievance prove --json`: the signed checkpoint note and each of the grievance's events it covers."""

    grievance_id: UUID
    checkpoint: str
    tree_size: int
    root_hash: str
    events: list[ProvedEvent]


class ConsistencyProof(msgspec.Struct, kw_only=True, frozen=True):
    """RFC 9162 §2.1.4: the proof that the log's first `old_size` leaves are a prefix of its first `new_size`, and
    the two roots as the store holds them (to be compared with checkpoints held elsewhere, never trusted)."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


def _problem(status: int, code: str, field: str, reason: str) -> ProblemDetailsException:
    return ProblemDetailsException(
        status_code=status, type_=PROBLEM_BASE + code, title="not found" if status == 404 else "conflict",
        detail=f"{field}: {reason}", extra={"code": code, "field": field, "reason": reason},
    )  # fmt: skip


def _log(svc: Services) -> Transparency:
    if svc.transparency is None:
        raise _problem(404, "no_log", "log", "this service has no Merkle log")
    return svc.transparency


def _latest(svc: Services) -> tuple[str, SignedCheckpoint]:
    """The latest published checkpoint, as its note and read; 404 before the notary published one."""
    path = svc.checkpoints_dir / LATEST if svc.checkpoints_dir else None
    if path is None or not path.exists():
        raise _problem(404, "no_checkpoint", "checkpoint", "no checkpoint is published yet (grievance notary "
                       "--dir DIR, and GRIEVANCE_CHECKPOINTS_DIR naming DIR here)")  # fmt: skip
    # Read once and parsed from what was read: the notary may publish another between two reads.
    note = read_note(path)
    return note, parse_note(note)


@get("/checkpoints/latest", sync_to_thread=True, media_type=MediaType.TEXT, tags=["transparency"],
     summary="The latest signed checkpoint (C2SP tlog-checkpoint signed note), as the notary published it")  # fmt: skip
def latest_checkpoint(state: State, principal: Reader) -> Response[str]:
    note, _ = _latest(services(state))
    return Response(note, media_type=MediaType.TEXT)


@get("/grievances/{grievance_id:uuid}/proof", sync_to_thread=True, tags=["transparency"],
     responses={**problem_responses(400, 401, 403, 404, 422, 409)},
     summary="Each of a grievance's events in the latest checkpoint, with its inclusion proof: check it offline "
             "(python -m adapters.audit.offline_verifier)")  # fmt: skip
def grievance_proof(grievance_id: FromPath[UUID], state: State, principal: Reader) -> GrievanceProof:
    svc = services(state)
    _readable(svc, principal, grievance_id)
    log = _log(svc)
    _, signed = _latest(svc)
    try:
        proved = log.prove(grievance_id, signed.checkpoint)
    except NotExtended as e:
        raise _problem(409, e.finding.kind, e.finding.field, e.finding.reason) from None
    return msgspec.convert(proof_document(grievance_id, signed, proved), GrievanceProof)


@get("/log/consistency", sync_to_thread=True, tags=["transparency"],
     summary="The RFC 9162 consistency proof between two sizes of the store's Merkle log")  # fmt: skip
def log_consistency(
    state: State,
    principal: Reader,
    from_size: Annotated[str, QueryParameter(name="from", description="The older tree size.", schema_extra=SIZE)],
    to_size: Annotated[str, QueryParameter(name="to", description="The newer tree size.", schema_extra=SIZE)],
) -> ConsistencyProof:
    log = _log(services(state))
    old_size, new_size = _size("from", from_size), _size("to", to_size)
    if old_size > new_size:
        raise InvalidValue("from", f"{old_size} is larger than to ({new_size}): a tree is a prefix of larger ones")
    size = log.store.log_size()
    if new_size > size:
        raise InvalidValue("to", f"the log has {size:,} leaves, fewer than {new_size:,}")
    try:
        proof = consistency_proof(old_size, new_size, log.store)
        old_root, new_root = tree_head(old_size, log.store), tree_head(new_size, log.store)
    except MissingNode as e:
        raise _problem(409, "log_damaged", "log", f"the store's log lacks a node of the proof: {e}") from None
    return ConsistencyProof(old_size=old_size, new_size=new_size, old_root=old_root.hex(), new_root=new_root.hex(),
                            proof=[h.hex() for h in proof])  # fmt: skip
