"""A staff member as their token says, where a thing sits on the grid, and the two refusals.

Scope is decided on the directory's tree: a role's node is a county, township, community or
grid (`ROLE_LEVEL`), and a thing (a task, a grid's report, a cadre) is in scope when its place
on the grid lies under that node. A place names the township, community and grid a node is in,
which is all the levels a role's node can be at: whether a place is in scope is one comparison,
and so is the SQL that filters a list.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridline.staff.roles import (
    LEVEL_ZH,
    PERMISSION_ZH,
    PERMISSIONS,
    ROLE_LEVEL,
    ROLE_ZH,
    Level,
    Permission,
    Role,
)

# The audit trail's `actor` column holds this many characters.
AUDIT_NAME_LENGTH = 100


class NotSignedIn(Exception):
    """No staff credential, or one that does not hold (HTTP 401, gRPC UNAUTHENTICATED)."""


class Forbidden(Exception):
    """A staff member whose role or node does not allow the action (HTTP 403, gRPC
    PERMISSION_DENIED)."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a node sits: the township, community and grid it is in (itself when it is one).

    Empty above what is known or below the node's own level: a community has no grid, and a
    task from before places were recorded has none at all (only the county office sees it).
    """

    township_id: str = ""
    community_id: str = ""
    grid_id: str = ""


# The attribute of a Place (and the column of a stored row) each level is filtered on.
PLACE_FIELD: dict[Level, str] = {
    Level.TOWNSHIP: "township_id",
    Level.COMMUNITY: "community_id",
    Level.GRID: "grid_id",
}


@dataclass(frozen=True, slots=True)
class Staff:
    """A verified staff member: who (`subject`, `name`), in what role, at which node."""

    subject: str
    name: str
    role: Role
    node_id: str

    @property
    def level(self) -> Level:
        """The level of the grid the staff member's node is at."""
        return ROLE_LEVEL[self.role]

    @property
    def audit_name(self) -> str:
        """How the audit trail names the person: name, role and subject, e.g.
        `张伟（社区工作人员，p-cm01）`."""
        return f"{self.name[:40]}（{ROLE_ZH[self.role]}，{self.subject}）"[:AUDIT_NAME_LENGTH]

    def may(self, permission: Permission) -> bool:
        """Whether the role allows the action anywhere."""
        return permission in PERMISSIONS[self.role]

    def require(self, *permissions: Permission) -> None:
        """Forbidden unless the role has one of `permissions` (they are alternatives)."""
        if not any(self.may(permission) for permission in permissions):
            raise Forbidden(f"{ROLE_ZH[self.role]}无权{PERMISSION_ZH[permissions[0]]}")

    @property
    def place_field(self) -> str | None:
        """The Place attribute (and column) the staff member's scope is filtered on; None for
        the whole county."""
        return PLACE_FIELD.get(self.level)

    def covers(self, place: Place) -> bool:
        """Whether a place lies under the staff member's node (an unknown place lies under the
        county's alone)."""
        field = self.place_field
        return field is None or (bool(self.node_id) and getattr(place, field) == self.node_id)

    def require_scope(self, place: Place, what: str) -> None:
        """Forbidden unless `place` lies under the staff member's node; `what` names the thing
        in the refusal (e.g. 该任务)."""
        if not self.covers(place):
            raise Forbidden(
                f"{what}不在您负责的{LEVEL_ZH[self.level]}（{self.node_id}）范围内，无权查看或处理"
            )
