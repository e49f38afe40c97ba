"""Request intake (诉求受理): every adapter's commands are decoded, applied and logged here."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec
import structlog
from eventsourcing.persistence import Tracking

from adapters import wire
from adapters.storage.receipts import Receipts
from engine.access import Principal
from engine.commands import Command, CommandBase, Outcome, Report, batch_decoder, command_decoder
from engine.errors import GrievanceError
from engine.service_chain import ServiceChain
from schemas.results import Accepted, Rejected, Result

log = structlog.get_logger("grievance.intake")


class Intake:
    """Applies decoded commands through the ServiceChain as their principal, one wire result and one log line
    per command."""

    def __init__(self, chain: ServiceChain, receipts: Receipts | None = None) -> None:
        self.chain = chain
        # Each accepted report's receipt for the resident (a repeat's too: the code derives from the grievance).
        self.receipts = receipts

    def submit(
        self,
        commands: Sequence[Command],
        *,
        principal: Principal | Sequence[Principal],
        tracking: Tracking | None = None,
        before_store: Callable[[list[Result]], None] | None = None,
    ) -> list[Result]:
        """Apply decoded commands sent by `principal` as one batch (one transaction), with the batch's upstream
        position if it has one; `before_store` sees the results before they are stored (see
        `ServiceChain.execute`)."""
        started = time.perf_counter()
        outcomes = self.chain.execute(
            commands,
            principal=principal,
            tracking=tracking,
            before_store=(lambda decided: before_store(_results(commands, decided))) if before_store else None,
        )
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        results = self._with_receipts(commands, _results(commands, outcomes), principal)
        for command, result in zip(commands, results, strict=True):
            _log(command, result, duration_ms, len(commands))
        return results

    def _with_receipts(self, commands: Sequence[Command], results: list[Result],
                       principal: Principal | Sequence[Principal]) -> list[Result]:  # fmt: skip
        """Each accepted report's receipt, for a sender the policy lets hold it (the rest get none: it goes to the
        resident's phone through the outbox)."""
        senders = [principal] * len(commands) if isinstance(principal, Principal) else list(principal)
        policy = self.chain.policy
        given = []
        for command, result, sender in zip(commands, results, senders, strict=True):
            if not (isinstance(result, Accepted) and isinstance(command, Report) and result.kind == "report"):
                continue
            # A repeat may come from someone else than the first sender: the grievance says who reported it.
            reported_by = self.chain.grievance(result.grievance_id).reported_by if result.duplicate else command.actor
            if policy.may_hold_receipt(sender, command, reported_by):
                given.append(result.grievance_id)
        if self.receipts is None or not given:
            return results
        codes = self.receipts.issue(given)
        return [msgspec.structs.replace(r, receipt=codes[r.grievance_id])
                if isinstance(r, Accepted) and r.kind == "report" and r.grievance_id in codes else r
                for r in results]  # fmt: skip

    def submit_one(self, command: Command, *, principal: Principal) -> Result:
        """Apply a single command."""
        return self.submit([command], principal=principal)[0]

    def submit_json(self, data: bytes, *, principal: Principal) -> list[Result]:
        """Decode a JSON command, or a JSON list of them, and apply it; malformed input is rejected whole."""
        decoded = decode_json(data)
        return [decoded] if isinstance(decoded, Rejected) else self.submit(decoded, principal=principal)


def decode_json(data: bytes) -> list[Command] | Rejected:
    """The commands of a JSON command or a JSON list of them, or the one refusal of them all, naming the field."""
    try:
        decoded: list[Command] | Command = (
            batch_decoder.decode(data) if data.lstrip()[:1] == b"[" else command_decoder.decode(data)
        )
    except wire.UNDECODABLE as e:
        result = wire.malformed(e)
        log.warning("command", outcome="malformed", field=result.field, reason=result.reason)
        return result
    return decoded if isinstance(decoded, list) else [decoded]


def _results(commands: Sequence[CommandBase], outcomes: Sequence[Outcome | GrievanceError]) -> list[Result]:
    return [
        wire.rejected(outcome, command) if isinstance(outcome, GrievanceError) else wire.accepted(outcome)
        for command, outcome in zip(commands, outcomes, strict=True)
    ]


def _log(command: CommandBase, result: Result, duration_ms: float, batch_size: int) -> None:
    with structlog.contextvars.bound_contextvars(grievance_id=str(command.grievance_id), command_id=command.command_id):
        kind = command.kind
        if isinstance(result, Accepted):
            log.info(
                "command",
                kind=kind,
                outcome="duplicate" if result.duplicate else "accepted",
                version=result.version,
                duration_ms=duration_ms,
                batch_size=batch_size,
            )
        elif isinstance(result, Rejected):
            log.info(
                "command",
                kind=kind,
                outcome="rejected",
                code=result.code,
                field=result.field,
                reason=result.reason,
                duration_ms=duration_ms,
                batch_size=batch_size,
            )
