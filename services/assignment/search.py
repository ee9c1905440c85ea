"""Finding households and nodes by what people type, for placing a report by hand.

Plain functions on the loaded directory: the Directory's SearchHouseholds and ListNodes RPCs
answer with them (the staff workbench's triage asks).
"""

from __future__ import annotations

import unicodedata

from services.assignment.directory import Directory
from services.assignment.grid import Node, NodeKind

# The most households one search returns, whatever is asked.
SEARCH_LIMIT = 50
DEFAULT_LIMIT = 20


def _folded(text: str) -> str:
    """Full-width forms folded (２３号楼 is 23号楼) and spaces dropped."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def words(text: str) -> list[str]:
    """The words of a search, each folded; none for a blank one."""
    return [w for w in (_folded(part) for part in unicodedata.normalize("NFKC", text).split()) if w]


def lies_under(directory: Directory, node: Node, under_id: str) -> bool:
    """Whether `node` is `under_id` or below it (anything lies under an empty id)."""
    if not under_id or node.id == under_id:
        return True
    return any(above.id == under_id for above in directory.ancestors(node.id))


def search_households(directory: Directory, under_id: str, text: str, limit: int) -> list[Node]:
    """The households under `under_id` whose address, or the name of a node above them, holds
    every word of `text`; by address, at most `limit` (capped at `SEARCH_LIMIT`). A text
    without words finds nothing."""
    wanted = words(text)
    if not wanted:
        return []
    cap = min(limit or DEFAULT_LIMIT, SEARCH_LIMIT)
    found: list[Node] = []
    for node in directory.nodes.values():
        if node.kind is not NodeKind.HOUSEHOLD:
            continue
        above = directory.ancestors(node.id)
        if under_id and not any(a.id == under_id for a in above):
            continue
        said = _folded(node.address or node.name) + "".join(_folded(a.name) for a in above)
        if all(word in said for word in wanted):
            found.append(node)
    found.sort(key=lambda n: (n.address or n.name, n.id))
    return found[:cap]


def nodes_of(directory: Directory, node_ids: list[str], under_id: str, kind: str) -> list[Node]:
    """The nodes named by id (unknown ones left out), then, with `under_id` and `kind`, the
    nodes of that kind under it, by id."""
    named = [directory.nodes[n] for n in node_ids if n in directory.nodes]
    if not (under_id and kind) or under_id not in directory.nodes:
        return named
    below = [
        node
        for node in directory.nodes.values()
        if node.kind.value == kind and node.id != under_id and lies_under(directory, node, under_id)
    ]
    return named + sorted(below, key=lambda n: n.id)
