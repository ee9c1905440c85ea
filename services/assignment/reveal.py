"""Revealing a person's ID number or phone: to whom it concerns, for a stated purpose, audited.

The rule. A request names the report, the field (ID number or phone) and what it is for. It is
granted to:

- a cadre (包户干部) whose node lies in the person's grid: the grid of the household (or unit,
  building) the report was placed at;
- the offices above that place: the grid's liaison, the community's staff, the township office
  and the county office, each at a node on the path from the place up to the county.

Everyone else is refused: other roles (health centre, operator, micro-grid leaders), a node
outside the person's path, a node above its role's level (a liaison holding a whole community),
and a request without a purpose. Every request, granted or not, writes one `reveal_audit` row
in its own transaction before the answer is given, so a refusal is on record too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from cryptography.exceptions import InvalidTag

from gridline.db import Database
from gridline.personal import Sealer, UnknownKeyId
from gridline.privacy import scrub_text
from gridline.staff.roles import ROLE_ZH
from gridline.staff.roles import Role as StaffRole
from gridline.timestamps import now
from services.assignment import sealed, storage
from services.assignment.directory import Directory, Role
from services.assignment.grid import NodeKind


class StaffIdentity(Protocol):
    """Who asks, as the staff authentication established it."""

    @property
    def subject(self) -> str:
        """The person's id at the identity provider, named in the audit."""
        ...

    @property
    def name(self) -> str:
        """The person's name, named in the audit beside the id."""
        ...

    @property
    def role(self) -> str:
        """`cadre`, `liaison`, `community_staff`, `township_office`, `county_office`, ..."""
        ...

    @property
    def node_id(self) -> str:
        """The node of the grid the person works for (their scope)."""
        ...


class RevealField(StrEnum):
    """A sealed field; its value is also the context it was sealed with."""

    ID_NUMBER = "id_number"
    PHONE = "phone"
    NAME = "name"


class Outcome(StrEnum):
    """What a request to reveal came to, as the audit records it."""

    REVEALED = "revealed"
    REFUSED = "refused"
    ABSENT = "absent"  # no such report, or its data was purged
    UNREADABLE = "unreadable"  # sealed with a key no longer in the ring


class RevealError(Exception):
    """A request that revealed nothing; the message says why, for the person who asked."""


class RevealRefused(RevealError):
    """The person asking may not see this field of this report."""


class NothingToReveal(RevealError):
    """No sealed data for the report: unknown, brought none, or purged after its retention."""


class SealUnreadable(RevealError):
    """The sealed value does not open with the key ring (its key was dropped too early)."""


# The highest node each role that may reveal can hold; the grid's cadres and offices above it.
_ROLE_LEVEL: Mapping[str, NodeKind] = {
    Role.CADRE: NodeKind.GRID,
    Role.LIAISON: NodeKind.GRID,
    Role.COMMUNITY_STAFF: NodeKind.COMMUNITY,
    Role.TOWNSHIP_OFFICE: NodeKind.TOWNSHIP,
    Role.COUNTY_OFFICE: NodeKind.COUNTY,
}
_DEPTH = {kind: depth for depth, kind in enumerate(NodeKind)}
_MIN_PURPOSE = 2


@dataclass(frozen=True, slots=True)
class _Answer:
    outcome: Outcome
    reason: str = ""
    value: str = ""


# A role as the person refused reads it.
_ROLE_NAMES = {role.value: name for role, name in ROLE_ZH.items()}


def refusal(directory: Directory, staff: StaffIdentity, place_id: str) -> str | None:
    """Why `staff` may not see the sealed fields of a person placed at `place_id`; None when
    they may (see the module's rule)."""
    level = _ROLE_LEVEL.get(staff.role)
    role = _ROLE_NAMES.get(str(staff.role), str(staff.role))
    if level is None:
        return f"{role}无权查看身份证号和手机号"
    node = directory.nodes.get(staff.node_id)
    if node is None:
        return f"工作人员所属节点“{staff.node_id}”不在名录中"
    if _DEPTH[node.kind] < _DEPTH[level]:
        return "工作人员所属节点高于其角色的层级"
    if place_id not in directory.nodes:
        return "该人员的落位地点已不在名录中"
    if staff.role == Role.CADRE:
        if not _same_grid(directory, place_id, node.id):
            return f"该人员不在您负责的网格（{node.name}）范围内，不是其包户干部"
        return None
    if not _on_path(directory, place_id, node.id):
        return f"该人员不在您负责的{node.name}范围内"
    return None


def _same_grid(directory: Directory, place_id: str, node_id: str) -> bool:
    """Whether the place and the node lie in one grid."""
    grid = directory.ancestor(place_id, NodeKind.GRID)
    own = directory.ancestor(node_id, NodeKind.GRID)
    return grid is not None and own is not None and grid.id == own.id


def _on_path(directory: Directory, place_id: str, node_id: str) -> bool:
    """Whether the node is the place or one above it."""
    return node_id == place_id or any(n.id == node_id for n in directory.ancestors(place_id))


async def reveal(
    db: Database,
    directory: Directory,
    sealer: Sealer,
    staff: StaffIdentity,
    *,
    report_id: str,
    field: RevealField,
    purpose: str,
) -> str:
    """The clear value of one sealed field of a report, if `staff` may see it.

    The request is audited (who, when, which field, the purpose, the outcome) and committed
    before anything is returned or raised. Raises RevealRefused, NothingToReveal or
    SealUnreadable, each with a message in Chinese.
    """
    stated = scrub_text(purpose).strip()
    async with db.session() as session:
        placement = await storage.get_placement(session, report_id)
        held = await sealed.sealed_of(session, report_id)
        if len(stated) < _MIN_PURPOSE:
            answer = _Answer(Outcome.REFUSED, "请写明查看用途")
        elif placement is None or held is None:
            answer = _Answer(Outcome.ABSENT, "没有这份报告的身份信息（不存在或已过保存期限删除）")
        elif (reason := refusal(directory, staff, placement.node_id)) is not None:
            answer = _Answer(Outcome.REFUSED, reason)
        else:
            answer = _unseal(sealer, held, field)
        sealed.audit(
            session,
            at=now(),
            staff=staff,
            report_id=report_id,
            field=field.value,
            purpose=stated,
            outcome=answer.outcome.value,
            reason=answer.reason,
        )
    if answer.outcome is Outcome.REFUSED:
        raise RevealRefused(answer.reason)
    if answer.outcome is Outcome.ABSENT:
        raise NothingToReveal(answer.reason)
    if answer.outcome is Outcome.UNREADABLE:
        raise SealUnreadable(answer.reason)
    return answer.value


def _sealed_field(held: sealed.SealedPerson, field: RevealField) -> bytes | None:
    if field is RevealField.ID_NUMBER:
        return held.id_number_sealed
    if field is RevealField.PHONE:
        return held.phone_sealed
    return held.name_sealed


def _unseal(sealer: Sealer, held: sealed.SealedPerson, field: RevealField) -> _Answer:
    blob = _sealed_field(held, field)
    if not blob:
        return _Answer(Outcome.ABSENT, "这份报告没有该项信息")
    try:
        return _Answer(Outcome.REVEALED, value=sealer.unseal(blob, field.value))
    except UnknownKeyId as exc:
        return _Answer(Outcome.UNREADABLE, str(exc))
    except InvalidTag:
        return _Answer(Outcome.UNREADABLE, "封存数据无法解封（密钥不符或数据损坏）")


@dataclass(frozen=True, slots=True)
class RegisterPerson:
    """One report's person as a register lists it for the person asking."""

    report_id: str
    name: str
    id_number: str
    phone: str
    revealed: bool
    origin_name: str
    arrived_at: datetime | None
    address: str
    transport: str
    cadre_name: str
    place_name: str


# The roles that list people at all: the chain, and the health centre (masked, for its tests).
_LISTS = frozenset({*_ROLE_LEVEL, StaffRole.HEALTH_CENTRE.value})


def listing_refusal(directory: Directory, staff: StaffIdentity, place_id: str) -> str | None:
    """Why a person placed at `place_id` is not in `staff`'s register; None when they are: the
    place lies under the staff member's node (a cadre's: in their grid)."""
    node = directory.nodes.get(staff.node_id)
    if node is None:
        return f"工作人员所属节点“{staff.node_id}”不在名录中"
    if place_id not in directory.nodes:
        return "该人员的落位地点已不在名录中"
    if node.kind is NodeKind.GRID or staff.role in (Role.CADRE, Role.LIAISON):
        return None if _same_grid(directory, place_id, node.id) else "网格外"
    return None if _on_path(directory, place_id, node.id) else f"不在{node.name}范围内"


async def register_persons(
    db: Database,
    directory: Directory,
    sealer: Sealer,
    staff: StaffIdentity,
    *,
    report_ids: Sequence[str],
    reveal_identity: bool,
    purpose: str,
) -> list[RegisterPerson]:
    """The persons of `report_ids` for a register, in clear when `reveal_identity` is asked and
    allowed, masked otherwise; those placed outside the staff member's node are left out.

    Revealing needs a role that may reveal (the module's rule) and a purpose, else RevealRefused
    for the whole register. A register that reveals anyone writes one audit row naming the
    person and the purpose, with the reports it revealed, committed before it is answered.
    """
    role = _ROLE_NAMES.get(str(staff.role), str(staff.role))
    stated = scrub_text(purpose).strip()
    refused = ""
    if staff.role not in _LISTS:
        refused = f"{role}无权查看人员台账"
    elif reveal_identity and staff.role not in _ROLE_LEVEL:
        refused = f"{role}无权查看姓名、身份证号和手机号"
    elif reveal_identity and len(stated) < _MIN_PURPOSE:
        refused = "请写明查看用途"
    if refused:
        # Refused as asked, and audited as the module's rule says: who, when, why not.
        async with db.session() as session:
            await sealed.audit_register(
                session, at=now(), staff=staff, purpose=stated, report_ids=(), refused=refused
            )
        raise RevealRefused(refused)
    async with db.session() as session:
        placements = await storage.placements_of(session, report_ids)
        held = await sealed.persons_of(session, list(placements))
        listed: list[RegisterPerson] = []
        for report_id, placement in placements.items():
            person = held.get(report_id)
            if person is None or listing_refusal(directory, staff, placement.node_id):
                continue
            clear = reveal_identity and refusal(directory, staff, placement.node_id) is None
            listed.append(_listed(directory, sealer, placement, person, clear))
        revealed = [p.report_id for p in listed if p.revealed]
        if revealed:
            await sealed.audit_register(
                session, at=now(), staff=staff, purpose=stated, report_ids=revealed
            )
    return listed


def _listed(
    directory: Directory,
    sealer: Sealer,
    placement: storage.Placement,
    person: sealed.SealedPerson,
    clear: bool,
) -> RegisterPerson:
    """One person as listed: unsealed when `clear` and every field opens, masked otherwise."""
    name, id_number, phone = person.name_masked, person.id_number_masked, person.phone_masked
    revealed = False
    if clear:
        try:
            name = sealer.unseal(person.name_sealed, "name") if person.name_sealed else name
            id_number = _open(sealer, person.id_number_sealed, "id_number") or id_number
            phone = _open(sealer, person.phone_sealed, "phone") or phone
            revealed = True
        except (UnknownKeyId, InvalidTag):
            name, id_number, phone = (
                person.name_masked,
                person.id_number_masked,
                person.phone_masked,
            )
    cadre = directory.people.get(placement.assignee_id)
    node = directory.nodes.get(placement.node_id)
    return RegisterPerson(
        report_id=person.report_id,
        name=name,
        id_number=id_number,
        phone=phone,
        revealed=revealed,
        origin_name=person.origin_name,
        arrived_at=person.arrived_at,
        address=person.address,
        transport=person.transport,
        cadre_name=cadre.name if cadre is not None and cadre.role == Role.CADRE else "",
        place_name=(node.address or node.name) if node is not None else "",
    )


def _open(sealer: Sealer, blob: bytes, field: str) -> str:
    return sealer.unseal(blob, field) if blob else ""
