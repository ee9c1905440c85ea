"""Placing a written address on the grid: household, else unit or building, else triage."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from gridline.divisions import division_table
from services.assignment.address_text import Parts, clean, parse_parts
from services.assignment.grid import Node, NodeKind

# Suffixes people drop when they name a compound ("三汇小区" → "三汇").
COMPOUND_SUFFIXES = ("家属院", "小区", "花园", "家园", "楼院", "新村", "佳苑", "人家", "苑", "里")
COMMUNITY_SUFFIXES = ("社区", "村委会", "村")
MAX_CANDIDATES = 25
_NUMBER = re.compile(r"\d+")

CONFIDENCE = {
    "exact": 1.0,
    "household": 0.9,
    "household_inferred": 0.8,
    "unit": 0.6,
    "building": 0.4,
    "triage": 0.0,
}


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where an address lands, how sure that is and what else it could have been."""

    node: Node
    confidence: float
    candidates: tuple[str, ...] = ()
    reason: str = ""

    @property
    def triage(self) -> bool:
        """The address reached no household, unit or building: someone must place it by hand."""
        return self.node.kind not in (NodeKind.HOUSEHOLD, NodeKind.UNIT, NodeKind.BUILDING)

    @property
    def household(self) -> Node | None:
        """The household, when the address reached one."""
        return self.node if self.node.kind is NodeKind.HOUSEHOLD else None


def core_name(name: str, suffixes: tuple[str, ...]) -> str:
    """A name without its generic suffix, if at least two characters remain."""
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def outer_prefixes(counties: Iterable[Node]) -> set[str]:
    """What people write before the county's own name: its province and prefecture, each with
    and without its ending (甘肃省, 甘肃, 兰州市, 兰州), from GB/T 2260.

    The county is found by its name or an alias in the directory. A name several counties share
    (朝阳区) gives the prefixes of all of them, unless an alias names one (北京市朝阳区).
    """
    table = division_table()
    prefixes: set[str] = set()
    for county in counties:
        found = [table.by_name(name) for name in (county.name, *county.aliases)]
        named = [divisions[0] for divisions in found if len(divisions) == 1]
        for division in named or [d for divisions in found for d in divisions]:
            for above in table.ancestors(division.code):
                prefixes |= {clean(form) for form in table.written_forms(above.code)}
    return prefixes


def _number(name: str) -> int | None:
    match = _NUMBER.search(clean(name))
    return int(match.group()) if match else None


def _alternation(names: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({n for n in names if n}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


@dataclass
class _Grid:
    buildings: dict[int, str] = field(default_factory=dict)
    by_unit_room: dict[tuple[int, int], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )


class AddressIndex:
    """Indexes of the grid by the names and numbers people write."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self._nodes = nodes
        kinds: dict[NodeKind, list[Node]] = defaultdict(list)
        for node in nodes.values():
            kinds[node.kind].append(node)
        self._townships = kinds[NodeKind.TOWNSHIP]
        prefixes = outer_prefixes(kinds[NodeKind.COUNTY])
        for node in kinds[NodeKind.COUNTY] + kinds[NodeKind.TOWNSHIP]:
            prefixes |= {clean(node.name), *map(clean, node.aliases)}
        self._prefixes = tuple(sorted(prefixes, key=len, reverse=True))
        self._exact = {
            self._strip_prefixes(clean(n.address)): n.id
            for n in kinds[NodeKind.HOUSEHOLD]
            if n.address
        }
        self._communities: dict[str, list[str]] = defaultdict(list)
        for node in kinds[NodeKind.COMMUNITY]:
            for name in {clean(node.name), *map(clean, node.aliases)}:
                self._communities[name].append(node.id)
        self._community_pattern = _alternation(self._communities)
        self._compounds: dict[str, list[str]] = defaultdict(list)
        for node in kinds[NodeKind.GRID]:
            names = {clean(node.name), *map(clean, node.aliases)}
            names.add(core_name(clean(node.name), COMPOUND_SUFFIXES))
            for name in names - set(self._communities):
                self._compounds[name].append(node.id)
        self._compound_pattern = _alternation(self._compounds)
        self._grids: dict[str, _Grid] = defaultdict(_Grid)
        self._units: dict[str, dict[int, str]] = defaultdict(dict)
        self._rooms: dict[str, dict[int, str]] = defaultdict(dict)
        self._building_rooms: dict[str, dict[int, list[str]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for node in kinds[NodeKind.BUILDING]:
            number = _number(node.name)
            if number is not None and node.parent_id:
                self._grids[node.parent_id].buildings[number] = node.id
        for node in kinds[NodeKind.UNIT]:
            number = _number(node.name)
            if number is not None and node.parent_id:
                self._units[node.parent_id][number] = node.id
        for node in kinds[NodeKind.HOUSEHOLD]:
            room = _number(node.name)
            unit = nodes.get(node.parent_id or "")
            if room is None or unit is None or unit.parent_id is None:
                continue
            self._rooms[unit.id][room] = node.id
            self._building_rooms[unit.parent_id][room].append(node.id)
            building = nodes[unit.parent_id]
            unit_number = _number(unit.name)
            if building.parent_id and unit_number is not None:
                self._grids[building.parent_id].by_unit_room[(unit_number, room)].append(node.id)

    def _strip_prefixes(self, text: str) -> str:
        # Longest first, again from the top after each cut, so "兰州市" never loses to "兰州".
        while prefix := next((p for p in self._prefixes if text.startswith(p)), None):
            text = text[len(prefix) :]
        return text

    def resolve(self, address: str) -> Resolution:
        """Place an address: the exact household, else the best unit or building, else triage."""
        text = self._strip_prefixes(clean(address))
        exact = self._exact.get(text)
        if exact is not None:
            return Resolution(self._nodes[exact], CONFIDENCE["exact"], reason="exact")
        communities: list[str] = []
        if self._community_pattern is not None:
            named = self._community_pattern.search(text)
            if named:
                communities = self._communities[named.group()]
                text = text[: named.start()] + text[named.end() :]
        compound = self._compound_pattern.search(text) if self._compound_pattern else None
        if compound is None:
            return self._triage(communities, self._similar_grids(text, communities), "no compound")
        grids = self._compounds[compound.group()]
        if communities:
            grids = [g for g in grids if self._nodes[g].parent_id in communities] or grids
        parts = parse_parts(text[compound.end() :])
        found = [r for r in (self._within(g, parts) for g in grids) if r is not None]
        placed = [r for r in found if not r.triage]
        if len(placed) == 1:
            return placed[0]
        candidates = tuple(c for r in found for c in (r.candidates or (r.node.id,)))
        if not candidates:
            candidates = tuple(grids)
        owners = communities or list({self._nodes[g].parent_id or "" for g in grids})
        reason = "several compounds match" if len(placed) > 1 else "no such building or room"
        return self._triage(owners, candidates, reason)

    def _within(self, grid_id: str, parts: Parts) -> Resolution | None:
        grid = self._grids[grid_id]
        if parts.building is None:
            if parts.unit is None or parts.room is None:
                return None
            homes = grid.by_unit_room.get((parts.unit, parts.room), [])
            if len(homes) == 1:
                return Resolution(
                    self._nodes[homes[0]], CONFIDENCE["household_inferred"], reason="no building"
                )
            return self._triage_here(grid_id, tuple(homes), "no building")
        building = grid.buildings.get(parts.building)
        if building is None:
            return None
        if parts.unit is None:
            homes = self._building_rooms[building].get(parts.room or -1, [])
            if len(homes) == 1:
                return Resolution(
                    self._nodes[homes[0]], CONFIDENCE["household_inferred"], reason="no unit"
                )
            return Resolution(
                self._nodes[building],
                CONFIDENCE["building"],
                tuple(homes[:MAX_CANDIDATES]) or self._unit_ids(building),
                "building only",
            )
        unit = self._units[building].get(parts.unit)
        if unit is None:
            return Resolution(
                self._nodes[building], CONFIDENCE["building"], self._unit_ids(building), "no unit"
            )
        home = self._rooms[unit].get(parts.room or -1)
        if home is None:
            return Resolution(self._nodes[unit], CONFIDENCE["unit"], (), "unit only")
        return Resolution(self._nodes[home], CONFIDENCE["household"], reason="household")

    def _unit_ids(self, building_id: str) -> tuple[str, ...]:
        return tuple(self._units[building_id].values())

    def _triage_here(self, grid_id: str, candidates: tuple[str, ...], reason: str) -> Resolution:
        community = self._nodes[self._nodes[grid_id].parent_id or grid_id]
        return Resolution(community, CONFIDENCE["triage"], candidates[:MAX_CANDIDATES], reason)

    def _triage(self, communities: list[str], candidates: Iterable[str], reason: str) -> Resolution:
        """A triage placement at the one community named, else the township."""
        owner = (
            self._nodes[communities[0]]
            if len(communities) == 1
            else (self._townships[0] if self._townships else next(iter(self._nodes.values())))
        )
        return Resolution(owner, CONFIDENCE["triage"], tuple(candidates)[:MAX_CANDIDATES], reason)

    def _similar_grids(self, text: str, communities: list[str]) -> list[str]:
        """Compounds whose name shares most characters with the text (misspelt names)."""
        letters = set(text)
        scored: list[tuple[float, str]] = []
        for name, grid_ids in self._compounds.items():
            share = len(set(name) & letters) / len(set(name))
            if share >= 0.5:
                for grid_id in grid_ids:
                    if not communities or self._nodes[grid_id].parent_id in communities:
                        scored.append((share, grid_id))
        scored.sort(key=lambda item: -item[0])
        return list(dict.fromkeys(grid_id for _, grid_id in scored))
