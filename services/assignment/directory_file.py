"""The directory as a file people edit (CSV, YAML or JSON), checked row by row before use.

One format for import, export and the demo county. CSV has one row per record with a `record`
column (group, person, micro_grid, node); YAML and JSON hold a list per record kind.

A group is an id and a name: its robot and secrets live in notify's groups file alone
(`GRIDLINE_NOTIFY_GROUPS_FILE`, docs/notify.md). A robot value in a group record is refused,
so that no one believes a robot configured here reaches the group; the empty robot columns of
files exported before that are accepted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.assignment.directory import Directory, Group, MicroGrid, Person, Role
from services.assignment.grid import Node, NodeKind

ALIAS_SEPARATOR = "|"
# The kind a node's parent must have.
PARENT_KIND = {
    NodeKind.TOWNSHIP: NodeKind.COUNTY,
    NodeKind.COMMUNITY: NodeKind.TOWNSHIP,
    NodeKind.GRID: NodeKind.COMMUNITY,
    NodeKind.BUILDING: NodeKind.GRID,
    NodeKind.UNIT: NodeKind.BUILDING,
    NodeKind.HOUSEHOLD: NodeKind.UNIT,
}
_ID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
# Group fields of files before notify's groups file became the one place robots are configured.
ROBOT_FIELDS = ("robot_webhook", "robot_secret")
ROBOT_MOVED = (
    "群机器人及其密钥不再登记在目录文件中，请写入通知服务的群组文件"
    "（GRIDLINE_NOTIFY_GROUPS_FILE，见 docs/notify.md），并删去此项"
)


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GroupRow(_Row):
    """A chat group."""

    id: str = _ID
    name: str = Field(min_length=1, max_length=100)


class PersonRow(_Row):
    """A responsible person."""

    id: str = _ID
    name: str = Field(min_length=1, max_length=64)
    role: Role
    phone: str = Field(pattern=r"^\+?[0-9]{5,20}$")
    group_id: str = _ID
    chat_id: str = Field(default="", max_length=64)
    on_leave: bool = False
    backup_id: str | None = None


class MicroGridRow(_Row):
    """A micro-grid and its leader."""

    id: str = _ID
    name: str = Field(min_length=1, max_length=100)
    leader_id: str = _ID


class NodeRow(_Row):
    """A place of the grid."""

    id: str = _ID
    kind: NodeKind
    name: str = Field(min_length=1, max_length=100)
    parent_id: str | None = None
    responsible_id: str | None = None
    address: str | None = Field(default=None, max_length=200)
    aliases: list[str] = Field(default_factory=list)
    micro_grid_id: str | None = None

    @field_validator("aliases", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [a for a in value.split(ALIAS_SEPARATOR) if a.strip()]
        return value


ROWS: dict[str, type[_Row]] = {
    "group": GroupRow,
    "person": PersonRow,
    "micro_grid": MicroGridRow,
    "node": NodeRow,
}
# YAML/JSON list names, in the order records are written.
SECTIONS = {"groups": "group", "people": "person", "micro_grids": "micro_grid", "nodes": "node"}
CSV_COLUMNS = ["record", *dict.fromkeys(f for row in ROWS.values() for f in row.model_fields)]


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: where (CSV line or list position), which field, what is wrong."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}, field {self.field!r}: {self.message}"


class DirectoryFileError(ValueError):
    """A directory file that cannot be used; every problem found is listed."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        super().__init__("\n".join(map(str, errors)))


def _records(path: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, record kind, raw fields) for each record of the file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.DictReader(file)
            for row in reader:
                where = f"row {reader.line_num}"
                fields = {
                    k: v for k, v in row.items() if k and k != "record" and v not in ("", None)
                }
                yield where, (row.get("record") or "").strip(), fields
        return
    if suffix not in (".yaml", ".yml", ".json"):
        raise DirectoryFileError([RowError(str(path), "file", "use .csv, .yaml, .yml or .json")])
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise DirectoryFileError([RowError(str(path), "file", f"not readable: {error}")]) from error
    if not isinstance(data, dict):
        raise DirectoryFileError([RowError(str(path), "file", "expected a mapping of lists")])
    for section in data:
        if section not in SECTIONS:
            yield section, section, {}
    for section, kind in SECTIONS.items():
        for i, item in enumerate(data.get(section) or []):
            yield f"{section}[{i}]", kind, item if isinstance(item, dict) else {"": item}


def read(path: Path) -> Directory:
    """The directory in a file, or DirectoryFileError naming each bad row and field."""
    errors: list[RowError] = []
    rows: dict[str, list[tuple[str, Any]]] = {kind: [] for kind in ROWS}
    for where, kind, fields in _records(path):
        model = ROWS.get(kind)
        if model is None:
            errors.append(RowError(where, "record", f"unknown record {kind!r}; use {list(ROWS)}"))
            continue
        if kind == "group":
            errors.extend(RowError(where, f, ROBOT_MOVED) for f in ROBOT_FIELDS if fields.get(f))
            fields = {k: v for k, v in fields.items() if k not in ROBOT_FIELDS}
        try:
            rows[kind].append((where, model.model_validate(fields)))
        except ValidationError as error:
            for problem in error.errors():
                field = ".".join(str(p) for p in problem["loc"]) or "record"
                errors.append(RowError(where, field, problem["msg"]))
    groups = [(w, Group(**r.model_dump())) for w, r in rows["group"]]
    people = [(w, Person(**r.model_dump())) for w, r in rows["person"]]
    micro_grids = [(w, MicroGrid(**r.model_dump())) for w, r in rows["micro_grid"]]
    nodes = [(w, Node(**(r.model_dump() | {"aliases": tuple(r.aliases)}))) for w, r in rows["node"]]
    errors.extend(_cross_check(groups, people, micro_grids, nodes))
    if errors:
        raise DirectoryFileError(errors)
    return Directory(
        [n for _, n in nodes],
        [p for _, p in people],
        [g for _, g in groups],
        [m for _, m in micro_grids],
    )


def _duplicates(items: Iterable[tuple[str, Any]]) -> Iterator[RowError]:
    seen: dict[str, str] = {}
    for where, item in items:
        if item.id in seen:
            yield RowError(where, "id", f"{item.id!r} is already used at {seen[item.id]}")
        seen.setdefault(item.id, where)


def _cross_check(
    groups: list[tuple[str, Group]],
    people: list[tuple[str, Person]],
    micro_grids: list[tuple[str, MicroGrid]],
    nodes: list[tuple[str, Node]],
) -> Iterator[RowError]:
    """References between records: every id named must exist and be of the right kind."""
    for items in (groups, people, micro_grids, nodes):
        yield from _duplicates(items)
    group_ids = {g.id for _, g in groups}
    by_person = {p.id: p for _, p in people}
    micro_ids = {m.id for _, m in micro_grids}
    by_node = {n.id: n for _, n in nodes}
    for where, person in people:
        if person.group_id not in group_ids:
            yield RowError(where, "group_id", f"no group {person.group_id!r}")
        if person.backup_id is not None:
            backup = by_person.get(person.backup_id)
            if backup is None or backup.role is not Role.CADRE or backup.id == person.id:
                yield RowError(where, "backup_id", f"{person.backup_id!r} is not another cadre")
    for where, micro_grid in micro_grids:
        if micro_grid.leader_id not in by_person:
            yield RowError(where, "leader_id", f"no person {micro_grid.leader_id!r}")
    addresses: dict[str, str] = {}
    counties = 0
    for where, node in nodes:
        wanted = PARENT_KIND.get(node.kind)
        parent = by_node.get(node.parent_id or "")
        if wanted is None:
            counties += 1
            if node.parent_id:
                yield RowError(where, "parent_id", "a county has no parent")
        elif parent is None:
            yield RowError(where, "parent_id", f"no node {node.parent_id!r}")
        elif parent.kind is not wanted:
            yield RowError(
                where, "parent_id", f"a {node.kind} belongs in a {wanted}, not a {parent.kind}"
            )
        if node.responsible_id is not None and node.responsible_id not in by_person:
            yield RowError(where, "responsible_id", f"no person {node.responsible_id!r}")
        if node.micro_grid_id is not None and node.micro_grid_id not in micro_ids:
            yield RowError(where, "micro_grid_id", f"no micro-grid {node.micro_grid_id!r}")
        if node.kind is NodeKind.HOUSEHOLD:
            if not node.address:
                yield RowError(where, "address", "a household needs its address")
            elif node.address in addresses:
                yield RowError(
                    where, "address", f"already the address of {addresses[node.address]}"
                )
            else:
                addresses[node.address] = where
    if nodes and counties != 1:
        yield RowError("file", "kind", f"exactly one county is needed, found {counties}")


def _plain(directory: Directory) -> dict[str, list[dict[str, Any]]]:
    """Each record as the plain fields the file holds, in section order."""

    def person(p: Person) -> dict[str, Any]:
        return asdict(p) | {"role": p.role.value}

    def node(n: Node) -> dict[str, Any]:
        return asdict(n) | {"kind": n.kind.value, "aliases": list(n.aliases)}

    return {
        "groups": [asdict(g) for g in directory.groups.values()],
        "people": [person(p) for p in directory.people.values()],
        "micro_grids": [asdict(m) for m in directory.micro_grids.values()],
        "nodes": [node(n) for n in directory.nodes.values()],
    }


def write(directory: Directory, path: Path) -> None:
    """Write the directory in the format its suffix names (what `read` takes back)."""
    sections = _plain(directory)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for section, kind in SECTIONS.items():
            for record in sections[section]:
                cells = {k: _cell(v) for k, v in record.items()}
                writer.writerow({"record": kind, **cells})
        path.write_text(buffer.getvalue(), encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(sections, ensure_ascii=False, indent=1), encoding="utf-8")
    elif suffix in (".yaml", ".yml"):
        path.write_text(
            yaml.safe_dump(sections, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    else:
        raise DirectoryFileError([RowError(str(path), "file", "use .csv, .yaml, .yml or .json")])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ALIAS_SEPARATOR.join(value)
    if isinstance(value, bool):
        return "true" if value else ""
    return str(value)
