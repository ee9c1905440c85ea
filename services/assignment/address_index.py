"""Placing a written address on the grid: household, else unit or building, else triage."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from gridline.divisions import division_table
from services.assignment.address_text import Parts, clean, parse_parts
from services.assignment.grid import Node, NodeKind

# Suffixes people drop when they name a compound ("三汇小区" → "三汇") or a level of the
# administration ("石洞镇" → "石洞", "城北社区" → "城北"); longer endings first.
COMPOUND_SUFFIXES = ("家属院", "小区", "花园", "家园", "楼院", "新村", "佳苑", "人家", "苑", "里")
ADMIN_SUFFIXES = {
    NodeKind.COUNTY: ("自治县", "县", "区", "市", "旗"),
    NodeKind.TOWNSHIP: ("街道办事处", "街道办", "街道", "镇", "乡"),
    NodeKind.COMMUNITY: ("社区居委会", "居委会", "村委会", "社区", "村"),
}
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


class _Names:
    """Written names and the nodes each can mean, looked up at any position of a text."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = defaultdict(list)
        self._by_first: dict[str, list[str]] = defaultdict(list)

    def add(self, names: Iterable[str], node_id: str) -> None:
        """Let each of `names` mean this node too."""
        for name in names:
            if name and node_id not in self.ids[name]:
                if not self.ids[name]:
                    self._by_first[name[0]].append(name)
                    self._by_first[name[0]].sort(key=len, reverse=True)
                self.ids[name].append(node_id)

    def at(self, text: str, start: int) -> list[str]:
        """The names written at `start`, longest first."""
        return [
            n for n in self._by_first.get(text[start : start + 1], []) if text.startswith(n, start)
        ]


@dataclass(frozen=True, slots=True)
class _Reading:
    """One way to read an address: a compound's name at `start`, the numbers after it, and the
    administrative nodes named with it.

    `whole` is whether only administrative names stand before the compound; `grids` are the
    compounds of that name under every level named, or, when none is (`consistent` false),
    all compounds of that name, kept as candidates for whoever places it by hand.
    """

    start: int
    name: str
    grids: tuple[str, ...]
    parts: Parts
    named: frozenset[str]
    whole: bool
    consistent: bool

    @property
    def placeable(self) -> bool:
        return self.parts.building is not None or self.parts.unit is not None

    @property
    def rank(self) -> tuple[bool, bool, bool, int]:
        # Numbers after the name beat none; a clean run of county, township and community names
        # before it beats anything else there; agreeing with them beats contradicting them; a
        # longer, more specific name beats a short alias.
        return (self.placeable, self.whole, self.consistent, len(self.name))


@dataclass
class _Grid:
    buildings: dict[int, str] = field(default_factory=dict)
    by_unit_room: dict[tuple[int, int], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )


class AddressIndex:
    """Indexes of the grid by the names and numbers people write.

    An address is read as administrative names (county, township, community, each with or
    without its suffix), then a compound's name, then building, unit and room. A name that is
    both a community without its suffix and a compound without its suffix (三川 of 三川社区 and
    三川佳苑) is read whichever way lets the rest of the address make sense; when no reading
    is sure, the address goes to triage rather than to a household it may not mean.
    """

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
        self._admin = _Names()
        self._admin_whole = _Names()
        for kind, suffixes in ADMIN_SUFFIXES.items():
            for node in kinds[kind]:
                # Written whole, without its suffix, or with another of its level (城北居委会).
                written = {clean(node.name), *map(clean, node.aliases)}
                cores = {core_name(w, suffixes) for w in written}
                self._admin.add(written | cores | {c + s for c in cores for s in suffixes}, node.id)
                self._admin_whole.add(written, node.id)
        self._communities: dict[str, list[str]] = defaultdict(list)
        for node in kinds[NodeKind.COMMUNITY]:
            for name in {clean(node.name), *map(clean, node.aliases)}:
                self._communities[name].append(node.id)
        self._community_pattern = _alternation(self._communities)
        self._compounds = _Names()
        self._above: dict[str, set[str]] = {}
        for node in kinds[NodeKind.GRID]:
            names = {clean(node.name), *map(clean, node.aliases)}
            names.add(core_name(clean(node.name), COMPOUND_SUFFIXES))
            self._compounds.add(sorted(names - set(self._communities)), node.id)
            self._above[node.id] = self._ancestors(node)
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

    def _ancestors(self, node: Node) -> set[str]:
        found: set[str] = set()
        while node.parent_id and node.parent_id in self._nodes and node.parent_id not in found:
            found.add(node.parent_id)
            node = self._nodes[node.parent_id]
        return found

    def _strip_prefixes(self, text: str) -> str:
        # Longest first, again from the top after each cut, so "兰州市" never loses to "兰州".
        while prefix := next((p for p in self._prefixes if text.startswith(p)), None):
            text = text[len(prefix) :]
        return text

    def _admin_runs(self, text: str, names: _Names) -> dict[int, frozenset[str]]:
        """Each position the text reaches from its start through administrative names alone,
        with the nodes named on the way there.

        Addresses go from the larger place to the smaller, so a later name of a level replaces
        an earlier one: in 城关东岗社区, 城关 (a township and a community without their
        suffixes) is the township once 东岗社区 names the community.
        """
        reached: dict[int, frozenset[str]] = {0: frozenset()}
        for start in range(len(text)):
            if start not in reached:
                continue
            for name in names.at(text, start):
                ids = names.ids[name]
                kinds = {self._nodes[i].kind for i in ids}
                kept = {i for i in reached[start] if self._nodes[i].kind not in kinds}
                reached.setdefault(start + len(name), frozenset(kept.union(ids)))
        return reached

    def resolve(self, address: str) -> Resolution:
        """Place an address: the exact household, else the best unit or building, else triage."""
        text = self._strip_prefixes(clean(address))
        exact = self._exact.get(text)
        if exact is not None:
            return Resolution(self._nodes[exact], CONFIDENCE["exact"], reason="exact")
        runs = self._admin_runs(text, self._admin)
        readings = [
            self._reading(text, start, name, runs.get(start))
            for start in range(len(text))
            for name in self._compounds.at(text, start)
        ]
        admin_end = max(runs)
        if not any(r.placeable for r in readings):
            # Without numbers after it, a compound alias inside the administrative names
            # (石洞 of 石洞镇西岔社区) is one of those names, not a compound.
            readings = [r for r in readings if r.start + len(r.name) > admin_end]
        if not readings:
            communities = self._of_kind(runs[admin_end], NodeKind.COMMUNITY)
            similar = self._similar_grids(text[admin_end:], communities)
            return self._triage(communities, similar, "no compound")
        best = max(r.rank for r in readings)
        return self._place([r for r in readings if r.rank == best])

    def _reading(self, text: str, start: int, name: str, named: frozenset[str] | None) -> _Reading:
        tail = text[start + len(name) :]
        # The community is sometimes written whole after the compound: 三汇小区（城北社区）3号楼.
        after = self._admin_runs(tail, self._admin_whole)
        skipped = max(after)
        levels = after[skipped] | (named if named is not None else self._named_anywhere(text))
        grids = tuple(self._compounds.ids[name])
        agreeing = tuple(g for g in grids if self._agrees(g, levels))
        return _Reading(
            start=start,
            name=name,
            grids=agreeing or grids,
            parts=parse_parts(tail[skipped:]),
            named=levels,
            whole=named is not None,
            consistent=bool(agreeing),
        )

    def _named_anywhere(self, text: str) -> frozenset[str]:
        """Communities written whole anywhere in the text, when more than administrative names
        stands before the compound."""
        if self._community_pattern is None:
            return frozenset()
        found = self._community_pattern.findall(text)
        return frozenset(c for name in found for c in self._communities[name])

    def _agrees(self, grid_id: str, named: frozenset[str]) -> bool:
        """Whether the grid lies under every level of the administration the address names."""
        for kind in (NodeKind.COUNTY, NodeKind.TOWNSHIP, NodeKind.COMMUNITY):
            levels = set(self._of_kind(named, kind))
            if levels and not levels & self._above[grid_id]:
                return False
        return True

    def _of_kind(self, ids: Iterable[str], kind: NodeKind) -> list[str]:
        return sorted(i for i in ids if self._nodes[i].kind is kind)

    def _place(self, readings: list[_Reading]) -> Resolution:
        """The one unit, building or household the best readings reach, else triage.

        An address whose community does not hold the compound it names contradicts itself:
        it goes to triage with what it could mean, never to a household.
        """
        communities = sorted(
            {c for r in readings for c in self._of_kind(r.named, NodeKind.COMMUNITY)}
        )
        pairs = [(g, r.parts) for r in readings for g in r.grids]
        found = [r for r in (self._within(g, parts) for g, parts in pairs) if r is not None]
        placed = [r for r in found if not r.triage]
        if len(placed) == 1 and readings[0].consistent:
            return placed[0]
        candidates = tuple(
            c for r in found for c in (r.candidates if r.triage else (r.node.id, *r.candidates))
        )
        grids = list(dict.fromkeys(g for g, _ in pairs))
        if not candidates:
            candidates = tuple(grids)
        owners = communities or list({self._nodes[g].parent_id or "" for g in grids})
        if not readings[0].consistent:
            reason = "community does not hold the compound"
        elif len(placed) > 1:
            reason = "several compounds match"
        else:
            reason = "no such building or room"
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
        for name, grid_ids in self._compounds.ids.items():
            share = len(set(name) & letters) / len(set(name))
            if share >= 0.5:
                for grid_id in grid_ids:
                    if not communities or self._nodes[grid_id].parent_id in communities:
                        scored.append((share, grid_id))
        scored.sort(key=lambda item: -item[0])
        return list(dict.fromkeys(grid_id for _, grid_id in scored))
