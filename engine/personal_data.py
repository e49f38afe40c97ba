"""Residents' personal data in events: which fields hold it, and the port through which it is sealed before
it is stored and opened when read (an adapter implements it with a key per resident).

Erasing a resident destroys their key: their sealed fields then open as ERASED, while the events
themselves, and the hash chain over them as stored, stay whole.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

ERASED = "[erased]"


class Sealer(Protocol):
    """Seals the personal fields of one batch of events, under keys made ready for the batch's subjects at once."""

    def seal(self, subject: str, field: str, value: str) -> str:
        """The value as it may be stored: unreadable without the subject's key."""
        ...

    def store_keys(self) -> None:
        """Store the keys made for the batch's new subjects, in a transaction of their own: for an event store that
        cannot store them in the batch's own transaction (which the event store's `sealed_by` does)."""
        ...


class PersonalData(Protocol):
    """Seals and opens one personal field of one resident (the subject)."""

    def for_batch(self, subjects: Collection[str]) -> Sealer:
        """A sealer for a batch of events naming `subjects`, their keys read (or made) at once."""
        ...

    def seal(self, subject: str, field: str, value: str) -> str:
        """The value as it may be stored: unreadable without the subject's key."""
        ...

    def open(self, subject: str, field: str, stored: str) -> str:
        """The value as sealed by `seal`, or ERASED once the subject's key is gone."""
        ...

    def knows(self, subject: str) -> bool:
        """Whether any stored event ever named the subject (their key is held, or was destroyed)."""
        ...

    def forget(self, subject: str) -> bool:
        """Destroy the subject's key, so their sealed fields open as ERASED; whether a key was held."""
        ...


def masked(field: str, value: str | None) -> str | None:
    """A personal field as shown to someone who has not asked, with reason and permission, to see it whole:
    a name keeps its first character (王*, 王**), a phone its first three and last four digits (139****0000)."""
    if not value or value == ERASED:
        return value
    if field.endswith("phone"):
        digits = [ch for ch in value if ch.isdigit()]
        if len(digits) >= 11:  # a mobile number: its carrier's prefix and last four, as 12345 lines show it
            return "".join(digits[:3]) + "****" + "".join(digits[-4:])
        return "*" * (len(digits) - 4) + "".join(digits[-4:]) if len(digits) > 4 else "*" * len(digits)
    if field.endswith("_id"):
        return value[:2] + "*" * max(len(value) - 2, 4)
    return value[0] + "*" * (len(value) - 1) if len(value) > 1 else "*"
