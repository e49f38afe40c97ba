"""What grid workers and members ask the chain to do, and what each request left behind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from engine.errors import InvalidValue
from engine.grievance import Status
from engine.levels import Level

Kind = Literal["report", "claim", "record_progress", "escalate", "resolve", "reply", "rate"]


@dataclass(frozen=True, slots=True)
class Command:
    """One request on one grievance; `command_id` is the client's, so a retried request is recognised.

    `params` holds the kind's own fields (a report's `unit_id` and `title`, a claim's `mode`, ...).
    """

    kind: Kind
    grievance_id: UUID
    command_id: str
    actor: str
    occurred_at: datetime
    params: Mapping[str, Any] = field(default_factory=dict)

    def required(self, name: str) -> Any:
        """A parameter the kind cannot do without."""
        try:
            value = self.params[name]
        except KeyError:
            raise InvalidValue(name, f"is required for a {self.kind} command") from None
        if value is None:
            raise InvalidValue(name, f"is required for a {self.kind} command")
        return value

    def optional(self, name: str, default: Any = None) -> Any:
        """A parameter that may be left out."""
        value = self.params.get(name)
        return default if value is None else value


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command left: the grievance's version and where it stands; `duplicate` for a repeat."""

    grievance_id: UUID
    command_id: str
    kind: Kind
    version: int
    status: Status
    level: Level
    unit_id: str
    duplicate: bool = False
