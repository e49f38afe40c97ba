"""Residents' personal data in events: which fields hold it, and the port through which it is sealed before
it is stored and opened when read (an adapter implements it with a key per resident).

Erasing a resident destroys their key: their sealed fields then open as ERASED, while the events
themselves, and the hash chain over them as stored, stay whole.
"""

from __future__ import annotations

from typing import Protocol

ERASED = "[erased]"


class PersonalData(Protocol):
    """Seals and opens one personal field of one resident (the subject)."""

    def seal(self, subject: str, field: str, value: str) -> str:
        """The value as it may be stored: unreadable without the subject's key."""
        ...

    def open(self, subject: str, field: str, stored: str) -> str:
        """The value as sealed by `seal`, or ERASED once the subject's key is gone."""
        ...

    def forget(self, subject: str) -> bool:
        """Destroy the subject's key, so their sealed fields open as ERASED; whether a key was held."""
        ...
