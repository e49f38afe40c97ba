"""Stored events as JSON written and read by msgspec, decoded straight into each event's field types."""

from __future__ import annotations

import dataclasses
import typing
from functools import cache
from typing import Any, NotRequired, TypedDict
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

from engine.personal_data import PersonalData, Sealer

# Filled in from the stored record's columns, never from the JSON body.
_RECORD_FIELDS = frozenset({"originator_id", "originator_version"})


class MsgspecTranscoder(Transcoder):
    """Encodes event state with msgspec (UUIDs, datetimes and enums natively); decodes untyped or typed."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder()

    def encode(self, obj: Any) -> bytes:
        return self._encoder.encode(obj)

    def decode(self, data: bytes) -> Any:
        return self._decoder.decode(data)

    def decode_as(self, data: bytes, event_class: Any) -> dict[str, Any]:
        """Decode the state of `event_class` with its field types, in one pass."""
        return _typed_decoder(event_class).decode(data)

    def convert(self, state: dict[str, Any], event_class: Any) -> dict[str, Any]:
        """Give an untyped (upcast) state the field types of `event_class`."""
        return msgspec.convert(state, _state_type(event_class))  # type: ignore[no-any-return]


class TypedEventMapper(Mapper[UUID]):
    """A Mapper that decodes each event straight into its field types, upcasting older versions.

    The library's Mapper decodes untyped and leaves datetimes and enums as strings; msgspec can do
    the typing during the decode itself, which is where most of the read time goes.
    """

    transcoder: MsgspecTranscoder
    # Seals and opens the personal fields an event class names (engine.personal_data); None stores them as
    # they are, and reads them as stored.
    personal_data: PersonalData | None = None

    def to_stored_events(
        self, domain_events: list[DomainEventProtocol[UUID]]
    ) -> tuple[list[StoredEvent], Sealer | None]:
        """A batch's events as stored, and the sealer their personal fields were sealed with (None if none were):
        the keys of all the batch's residents are read at once, and those it made must be stored with the batch."""
        sealer: Sealer | None = None
        if self.personal_data is not None:
            subjects = {s for e in domain_events if (s := _subject(e))}
            if subjects:
                sealer = self.personal_data.for_batch(subjects)
        return [self.to_stored_event(e, sealer=sealer) for e in domain_events], sealer

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID], *, sealer: Sealer | None = None) -> StoredEvent:
        """The event as stored, its personal fields sealed: as the library's Mapper stores it, in one copy of its
        state (the library's path, with a sealed copy of the event made first, was a seventh of a batch)."""
        topic, class_version, fields, _, _ = _for_storing(type(domain_event))
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        sealing = sealer or self.personal_data
        if fields and sealing is not None and (subject := _subject(domain_event)):
            for field in fields:
                if value := state.get(field):
                    state[field] = sealing.seal(subject, field, value)
        if class_version > 1:
            state["class_version"] = class_version
        data = self.transcoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic, state=data)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls, class_version, typed, fields = _by_topic(stored_event.topic)
        data = stored_event.state
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        try:
            # A ValidationError means an older version's shape: the untyped path below upcasts it. (A plain
            # try rather than contextlib.suppress: this runs for every event read, and that was a third of it.)
            try:
                state = typed.decode(data)
            except msgspec.ValidationError:
                state = None
            if state is None or state.pop("class_version", 1) != class_version:
                state = self.transcoder.decode(data)
                from_version = state.pop("class_version", 1)
                while from_version < class_version:
                    getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                    from_version += 1
                state = self.transcoder.convert(state, cls)
                state.pop("class_version", None)
        except (msgspec.DecodeError, msgspec.ValidationError, AttributeError) as e:
            msg = (
                f"Failed to deserialise stored event {stored_event.topic!r} of "
                f"{stored_event.originator_id} at version {stored_event.originator_version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e
        originator_id = stored_event.originator_id
        state["originator_id"] = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        state["originator_version"] = stored_event.originator_version
        if fields and self.personal_data is not None and (subject := state.get(cls.personal_subject)):
            subject = getattr(cls, "personal_scope", "") + subject
            for field in fields:
                if state.get(field):
                    state[field] = self.personal_data.open(subject, field, state[field])
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event  # type: ignore[no-any-return]


def _subject(domain_event: Any) -> str | None:
    """Whose personal data the event holds, if its class names personal fields and the event a subject."""
    cls: type = type(domain_event)
    _, _, fields, subject_field, scope = _for_storing(cls)
    if not fields:
        return None
    subject: str | None = vars(domain_event).get(subject_field)
    # A class may keep its subjects apart from residents' (the roster's people: engine/roster.py).
    return scope + subject if subject else subject


@cache
def _for_storing(cls: type) -> tuple[str, int, tuple[str, ...], str, str]:
    """An event class's topic, version, personal fields, the field naming whose they are, and its subjects' scope."""
    return (get_topic(cls), getattr(cls, "class_version", 1), getattr(cls, "personal_fields", ()),
            getattr(cls, "personal_subject", ""), getattr(cls, "personal_scope", ""))  # fmt: skip


@cache
def _by_topic(topic: str) -> tuple[Any, int, msgspec.json.Decoder[dict[str, Any]], tuple[str, ...]]:
    """An event class, its version, its typed decoder and its personal fields, looked up once per topic."""
    cls = resolve_topic(topic)
    return cls, getattr(cls, "class_version", 1), _typed_decoder(cls), getattr(cls, "personal_fields", ())


@cache
def _state_type(event_class: Any) -> type[dict[str, Any]]:
    hints = typing.get_type_hints(event_class)
    # The event's fields, not its class variables (a label, say), which dataclasses keep alongside them.
    names = {f.name for f in dataclasses.fields(event_class)} if dataclasses.is_dataclass(event_class) else hints
    fields: dict[str, Any] = {
        name: hint for name, hint in hints.items() if name in names and name not in _RECORD_FIELDS
    }
    fields["class_version"] = NotRequired[int]
    return TypedDict(f"{event_class.__qualname__}State", fields)  # type: ignore[operator,no-any-return]


@cache
def _typed_decoder(event_class: Any) -> msgspec.json.Decoder[dict[str, Any]]:
    return msgspec.json.Decoder(_state_type(event_class))
