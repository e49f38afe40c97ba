"""Auditors' commands of the Merkle log: signing keys, signed checkpoints, proofs, and the check of the store
against a checkpoint held elsewhere."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn
from uuid import UUID

import click

from adapters import composition
from adapters.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Cosigner,
    SignedCheckpoint,
    Verifier,
    load_signing_key,
    new_signing_key,
    parse_note,
    read_note,
    verified,
)
from adapters.audit.notary import Notary
from adapters.audit.transparency import NotExtended, Verdict, proof_document
from adapters.audit.witness import NotConsistent, Witness
from adapters.cli.session import (
    EXIT_BROKEN,
    F,
    encoder,
    fail,
    json_option,
    opened,
    out,
    parse_uuid,
    refuse,
    stop_on_signals,
)
from engine.errors import GrievanceError


def register(main: click.Group) -> None:
    """Add these commands to the `grievance` group."""
    main.add_command(checkpoint_key)
    main.add_command(checkpoint)
    main.add_command(prove)
    main.add_command(witness)
    main.add_command(notary)


def refuse_checkpoint(e: CheckpointError) -> NoReturn:
    fail(f"{e.field}: {e.reason}", error_code="bad_checkpoint")


def checkpoint_options(f: F) -> F:
    """--checkpoint FILE and --verifier-key KEY (repeatable): a checkpoint note and the keys it must be signed by."""
    f = click.option("--verifier-key", "verifier_keys", multiple=True, metavar="KEY",
                     help="A verifier key (name+hash+key) the checkpoint must be signed by.")(f)  # fmt: skip
    return click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="A signed checkpoint note, taken earlier and kept off the database host.")(f)  # fmt: skip


def read_checkpoint(path: Path, verifier_keys: tuple[str, ...]) -> tuple[SignedCheckpoint, bool]:
    """The checkpoint in `path`, its signature checked when verifier keys are given; and whether it was."""
    try:
        note = read_note(path)
        if not verifier_keys:
            return parse_note(note), False
        verifiers = [Verifier.parse(k, "--verifier-key") for k in verifier_keys]
        return verified(note, verifiers), True
    except CheckpointError as e:
        refuse_checkpoint(e)


@click.command("checkpoint-key")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The log's origin, e.g. grievances.example.org/log.")
def checkpoint_key(file: Path, name: str) -> None:
    """Make an Ed25519 signing key for checkpoints in FILE (readable by its owner only; keep it off the database
    host) and print its verifier key, which auditors check checkpoints with."""
    try:
        signer = new_signing_key(file, name)
    except CheckpointError as e:
        refuse_checkpoint(e)
    click.echo(signer.verifier.encoded())


@click.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The signing key file (from checkpoint-key).")  # fmt: skip
def checkpoint(key_file: Path) -> None:
    """Sign the Merkle log's current head and print it as a checkpoint note (C2SP tlog-checkpoint)."""
    try:
        signer = load_signing_key(key_file)
    except CheckpointError as e:
        refuse_checkpoint(e)
    with opened() as session:
        signed = composition.build_transparency(session.chain).checkpoint(signer)
    click.echo(signed.note(), nl=False)


@click.command()
@click.argument("grievance_id", required=False)
@checkpoint_options
@click.option("--consistency", is_flag=True, help="Prove that the --from checkpoint is a prefix of --checkpoint.")
@click.option("--from", "from_file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --consistency: the older checkpoint.")  # fmt: skip
@json_option
def prove(grievance_id: str | None, checkpoint_file: Path | None, verifier_keys: tuple[str, ...], consistency: bool,
          from_file: Path | None, as_json: bool) -> None:  # fmt: skip
    """Each event of a grievance that a checkpoint covers, with what recomputes its chained hash and its RFC 9162
    inclusion proof against the checkpoint's root; or, with --consistency, the RFC 9162 consistency proof between
    two checkpoints.

    Exit 4 when the store's log no longer has the checkpoint's root.
    """
    if checkpoint_file is None:
        fail("--checkpoint: give the checkpoint to prove against")
    if consistency:
        if grievance_id or from_file is None:
            fail("--from: --consistency proves between two checkpoints: give --from OLD and --checkpoint NEW")
        prove_consistency(from_file, checkpoint_file, verifier_keys, as_json)
        return
    if not grievance_id:
        fail("grievance_id: give a grievance id, or --consistency")
    gid = parse_uuid(grievance_id)
    signed, _ = read_checkpoint(checkpoint_file, verifier_keys)
    with opened() as session:
        try:
            proved = composition.build_transparency(session.chain).prove(gid, signed.checkpoint)
        except GrievanceError as e:
            refuse(e)
        except NotExtended as e:
            fail(f"{e.finding.field}: {e.finding.reason}", EXIT_BROKEN, error_code=e.finding.kind)
    if as_json:
        click.echo(encoder.encode(proof_document(gid, signed, proved)))
        return
    out.print(f"checkpoint: {signed.checkpoint.origin}, {signed.checkpoint.size:,} leaves, "
              f"root {signed.checkpoint.root.hex()}")  # fmt: skip
    for p in proved:
        out.print(f"v{p.version}  leaf {p.leaf_index:,}  hash {p.chained_hash.hex()[:16]}  "
                  f"{len(p.inclusion_proof)} proof hashes")  # fmt: skip
    if not proved:
        out.print("no event of this grievance is in the checkpoint: it was written after; prove against a later one")


def prove_consistency(from_file: Path, to_file: Path, verifier_keys: tuple[str, ...], as_json: bool) -> None:
    """`prove --consistency`: the proof that the older checkpoint is a prefix of the newer, from the store's log."""
    old, _ = read_checkpoint(from_file, verifier_keys)
    new, _ = read_checkpoint(to_file, verifier_keys)
    with opened() as session:
        try:
            proof = composition.build_transparency(session.chain).consistency(old.checkpoint, new.checkpoint)
        except NotExtended as e:
            fail(f"{e.finding.field}: {e.finding.reason}", EXIT_BROKEN, error_code=e.finding.kind)
    if as_json:
        click.echo(encoder.encode({"from": old.note(), "to": new.note(), "old_size": old.checkpoint.size,
                                   "new_size": new.checkpoint.size, "proof": [h.hex() for h in proof]}))  # fmt: skip
        return
    out.print(f"consistent: {old.checkpoint.size:,} leaves are a prefix of {new.checkpoint.size:,} "
              f"({len(proof)} proof hashes)")  # fmt: skip
    for h in proof:
        out.print(h.hex())


def verify_against_checkpoint(grievance_id: UUID | None, signed: SignedCheckpoint, signature_checked: bool,
                              as_json: bool) -> None:  # fmt: skip
    """`verify ... --checkpoint`: whether the store (or one grievance) is an append-only extension of it; exit 4
    naming what is wrong when not."""
    cp = signed.checkpoint
    with opened() as session:
        transparency = composition.build_transparency(session.chain)
        try:
            verdict: Verdict = (
                transparency.verify_grievance(grievance_id, cp) if grievance_id else transparency.verify_all(cp)
            )
        except GrievanceError as e:
            refuse(e)
    if as_json:
        click.echo(encoder.encode({
            "checkpoint": {"origin": cp.origin, "tree_size": cp.size, "root_hash": cp.root.hex(),
                           "signature_checked": signature_checked},
            "grievance_id": grievance_id, "events": verdict.events, "unseen": verdict.unseen,
            "findings": [{"kind": f.kind, "reason": f.reason, "leaf_index": f.leaf_index,
                          "grievance_id": f.grievance_id, "version": f.version} for f in verdict.findings],
        }))  # fmt: skip
    else:
        print_verdict(grievance_id, verdict, signed, signature_checked)
    if verdict.findings:
        sys.exit(EXIT_BROKEN)


def print_verdict(grievance_id: UUID | None, verdict: Verdict, signed: SignedCheckpoint, checked: bool) -> None:
    cp = signed.checkpoint
    against = f"checkpoint {cp.origin} of {cp.size:,} leaves"
    if not checked:
        out.print("note: the checkpoint's signature was not checked (give --verifier-key)")
    for f in verdict.findings:
        out.print(f"broken: {f.kind}: {f.reason}")
    subject = f"grievance {grievance_id}" if grievance_id else "the store"
    if not verdict.findings:
        out.print(f"intact: {subject}'s {verdict.events:,} events extend {against} append-only")
    else:
        out.print(f"{subject} is not an append-only extension of {against}")
    n = verdict.unseen
    events, were, them = ("event", "was", "it") if n == 1 else ("events", "were", "them")
    if grievance_id is not None and n:
        out.print(f"unseen: {n:,} of its events {were} written after the checkpoint; a change to {them}, or a "
                  "deletion with its hash, shows only against a later checkpoint")  # fmt: skip
    elif n:
        out.print(f"unseen: {n:,} {events} {were} written after the checkpoint; a change to {them} shows only "
                  "against a later checkpoint")  # fmt: skip


@click.command()
@click.argument("checkpoint_file", metavar="CHECKPOINT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The witness's own signing key file (from checkpoint-key, with the witness's name).",
)
@click.option("--log-key", required=True, help="The log's verifier key: only its checkpoints are cosigned.")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the last checkpoint cosigned is kept; default KEY.state.",
)
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="prove --consistency --json output from the last checkpoint cosigned; default: ask the store.",
)
def witness(
    checkpoint_file: Path, key_file: Path, log_key: str, state_file: Path | None, proof_file: Path | None
) -> None:
    """Cosign CHECKPOINT (C2SP tlog-cosignature) once it is shown consistent with the last checkpoint this witness
    cosigned, and print it with the cosignature added; the first is taken on trust.

    Exit 4, cosigning nothing, when the log is not an append-only extension of the last one cosigned.
    """
    try:
        signer = load_signing_key(key_file)
        log = Verifier.parse(log_key, "--log-key")
        new = parse_note(read_note(checkpoint_file))
        keeper = Witness(signer, state_file or key_file.with_name(key_file.name + ".state"))
        first = keeper.last() is None
        cosigned = keeper.witness(new, log, consistency_from(proof_file), int(time.time()))
    except CheckpointError as e:
        refuse_checkpoint(e)
    except NotConsistent as e:
        fail(f"checkpoint: {e.reason}", EXIT_BROKEN, error_code=e.kind)
    except NotExtended as e:
        fail(f"{e.finding.field}: {e.finding.reason}", EXIT_BROKEN, error_code=e.finding.kind)
    click.echo(cosigned.note(), nl=False)
    trust = " (the first: taken on trust)" if first else ""
    click.echo(f"cosigned {new.checkpoint.size:,} leaves{trust} as {Cosigner.of(signer).encoded()}", err=True)


def consistency_from(proof_file: Path | None) -> Callable[[Checkpoint, Checkpoint], Sequence[bytes]]:
    """Where a witness's consistency proofs come from: a prove --consistency document, or the store."""

    def from_document(old: Checkpoint, new: Checkpoint) -> Sequence[bytes]:
        assert proof_file is not None
        try:
            doc = json.loads(proof_file.read_text(encoding="utf-8"))
            if (doc["old_size"], doc["new_size"]) != (old.size, new.size):
                raise CheckpointError("--proof", f"proves {doc['old_size']} to {doc['new_size']} leaves, not "
                                      f"{old.size} to {new.size}")  # fmt: skip
            return [bytes.fromhex(h) for h in doc["proof"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError("--proof", f"{proof_file} is not prove --consistency --json output: {e}") from None

    def from_store(old: Checkpoint, new: Checkpoint) -> Sequence[bytes]:
        with opened() as session:
            return composition.build_transparency(session.chain).consistency(old, new)

    return from_document if proof_file is not None else from_store


@click.command()
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The signing key file (from checkpoint-key).",
)
@click.option("--every", type=click.FloatRange(min=0.1, max=86_400), help="Seconds between heads signed.")
@click.option("--once", is_flag=True, help="Sign and publish the head once (if it grew), then stop: for cron.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where each checkpoint is published: `latest`, and `checkpoint.<size>` for each; "
    "default GRIEVANCE_CHECKPOINTS_DIR, where the HTTP service reads them.",
)
@click.option("--kafka", "to_kafka", is_flag=True,
              help="Announce each checkpoint on Kafka too (GRIEVANCE_KAFKA_CHECKPOINTS_TOPIC).")  # fmt: skip
def notary(key_file: Path, every: float | None, once: bool, directory: Path | None, to_kafka: bool) -> None:
    """Sign the Merkle log's head every so many seconds while it grows, and publish each checkpoint in a directory;
    stop on SIGTERM or Ctrl-C (or, with --once, after one round). Exit 4, signing nothing, when the head does not
    extend the last one published."""
    if once == (every is not None):
        fail("--every: give --every SECONDS to sign on a schedule, or --once to sign once")
    try:
        signer = load_signing_key(key_file)
    except CheckpointError as e:
        refuse_checkpoint(e)
    with opened(log_level="info") as session:
        directory = directory or session.settings.checkpoints_dir
        if directory is None:
            fail("--dir: give the directory to publish checkpoints in, or set GRIEVANCE_CHECKPOINTS_DIR")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            fail(f"--dir: {directory} cannot be made: {e.strerror}")
        keeper = Notary(signer, composition.build_transparency(session.chain), directory)
        if to_kafka:
            from adapters.kafka.checkpoints import announcer
        announce = announcer(session.settings.kafka, keeper.last()) if to_kafka else None
        stop = stop_on_signals()
        while True:
            try:
                signed = keeper.sign_if_grown()
            except NotExtended as e:
                fail(f"{e.finding.field}: {e.finding.reason}", EXIT_BROKEN, error_code=e.finding.kind)
            except CheckpointError as e:
                refuse_checkpoint(e)
            if signed is not None and announce:
                announce(signed)
            if signed is not None:
                cp = signed.checkpoint
                out.print(f"checkpoint of {cp.size:,} leaves, root {cp.root.hex()}, published in {directory}")
            elif once:
                out.print(f"the log has not grown since the checkpoint published last in {directory}")
            if once or stop.wait(every or 0):
                return
