"""The organisation chart: the units of the seven-step chain and who answers to whom."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ChartError, UnknownUnit, WrongLevel
from engine.levels import Level

UNIT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Unit:
    """One party organisation, group or model household on the chain."""

    id: str
    name: str
    level: Level
    parent: str | None


class OrgChart:
    """A validated tree of units: one leading-group root, every parent exactly one level up."""

    def __init__(self, units: Iterable[Unit]) -> None:
        self._units: dict[str, Unit] = {}
        for unit in units:
            if unit.id in self._units:
                raise ChartError(unit.id, "appears more than once")
            self._units[unit.id] = unit
        self._children: dict[str, list[str]] = {uid: [] for uid in self._units}
        self._lineage: dict[str, tuple[str, ...]] = {}
        roots = []
        for unit in self._units.values():
            if unit.parent is None:
                if unit.level is not Level.LEADING_GROUP:
                    raise ChartError(unit.id, f"has no parent but is a {unit.level}, not the leading group")
                roots.append(unit.id)
                continue
            parent = self._units.get(unit.parent)
            if parent is None:
                raise ChartError(unit.id, f"its parent {unit.parent!r} is not in the chart")
            if parent.id == unit.id:
                raise ChartError(unit.id, "is its own parent (a cycle)")
            if unit.level.above is not parent.level:
                raise ChartError(
                    unit.id,
                    f"is a {unit.level} but its parent {parent.id!r} is a {parent.level}; "
                    f"a parent must be exactly one level up ({unit.level.above})",
                )
            self._children[parent.id].append(unit.id)
        if len(roots) != 1:
            found = ", ".join(sorted(roots)) or "none"
            raise ChartError(
                roots[0] if roots else "<root>", f"a chart needs exactly one leading-group root; found {found}"
            )
        self.root: Unit = self._units[roots[0]]
        # Levels strictly rise towards the root, so no cycle can survive the checks above; this
        # walk only proves every unit reaches the root.
        for unit in self._units.values():
            if self.path_to_root(unit.id)[-1] != self.root:
                raise ChartError(unit.id, "does not reach the leading group (a cycle)")

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> OrgChart:
        """Build a chart from plain records (`id`, `name`, `level`, `parent`), as read from a file."""
        units = []
        for index, record in enumerate(records):
            units.append(_unit_from_record(index, record))
        return cls(units)

    def to_records(self) -> list[dict[str, Any]]:
        """The chart as plain records, root first, in the shape `from_records` reads."""
        return [{"id": u.id, "name": u.name, "level": u.level.value, "parent": u.parent} for u in self.walk()]

    def __len__(self) -> int:
        return len(self._units)

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self._units

    def __iter__(self) -> Iterator[Unit]:
        return iter(self._units.values())

    def unit(self, unit_id: str, *, field: str = "unit_id") -> Unit:
        """The unit with this id, or `UnknownUnit` naming the field that carried it."""
        try:
            return self._units[unit_id]
        except (KeyError, TypeError):
            raise UnknownUnit(field, f"no unit {unit_id!r} in the organisation chart") from None

    def unit_at(self, unit_id: str, levels: Collection[Level], *, field: str = "unit_id") -> Unit:
        """The unit, checked to sit at one of `levels`."""
        unit = self.unit(unit_id, field=field)
        if unit.level not in levels:
            names = ", ".join(level.value for level in Level if level in levels)
            raise WrongLevel(field, f"unit {unit_id!r} is a {unit.level}; expected one of: {names}")
        return unit

    def parent_of(self, unit_id: str) -> Unit | None:
        """The unit one step up, or None for the leading group."""
        parent = self.unit(unit_id).parent
        return None if parent is None else self._units[parent]

    def children_of(self, unit_id: str) -> list[Unit]:
        """The units directly below."""
        return [self._units[c] for c in self._children[self.unit(unit_id).id]]

    def path_to_root(self, unit_id: str) -> list[Unit]:
        """The unit and every unit above it, ending at the leading group."""
        path = [self.unit(unit_id)]
        while path[-1].parent is not None:
            if len(path) > len(Level):
                raise ChartError(unit_id, "does not reach the leading group (a cycle)")
            path.append(self._units[path[-1].parent])
        return path

    def lineage(self, unit_id: str) -> tuple[str, ...]:
        """The ids of the unit and every unit above it, computed once per unit (charts never change)."""
        cached = self._lineage.get(unit_id)
        if cached is None:
            cached = self._lineage[unit_id] = tuple(u.id for u in self.path_to_root(unit_id))
        return cached

    def walk(self, unit_id: str | None = None) -> Iterator[Unit]:
        """The unit (default: the root) and everything below it, parents before children."""
        stack = [self.unit(unit_id) if unit_id else self.root]
        while stack:
            unit = stack.pop()
            yield unit
            stack.extend(reversed([self._units[c] for c in self._children[unit.id]]))

    def count_by_level(self) -> dict[Level, int]:
        """How many units each level has."""
        counts = dict.fromkeys(Level, 0)
        for unit in self._units.values():
            counts[unit.level] += 1
        return counts


def _unit_from_record(index: int, record: Mapping[str, Any]) -> Unit:
    if not isinstance(record, Mapping):
        raise ChartError(f"#{index}", "is not a record with id, name, level and parent")
    unit_id = record.get("id")
    if not isinstance(unit_id, str) or not UNIT_ID.match(unit_id):
        raise ChartError(
            str(unit_id) if unit_id is not None else f"#{index}",
            "id must be 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
        )
    name = record.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ChartError(unit_id, f"name must be non-empty text of at most {MAX_NAME} characters")
    try:
        level = Level(str(record.get("level")))
    except ValueError:
        choices = ", ".join(level.value for level in Level)
        raise ChartError(unit_id, f"level {record.get('level')!r} is not one of: {choices}") from None
    parent = record.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise ChartError(unit_id, "parent must be a unit id or null")
    return Unit(id=unit_id, name=name.strip(), level=level, parent=parent or None)
