"""Links sent to people in notices: each opens one task's page for one recipient.

A link names the task, the recipient it was sent to (a person, else a group), the recipient's
role, the group holding the task when it was issued, when it was issued and when it expires, all
under one signature (`gridline.signed_links`). Every notice gets a link of its own, valid for
the configured time from that notice. Escalation's page lets a link in while it has not expired
and the task has not gone to another holder since it was issued; the links of micro-grid leaders
and health centres only show the task.

    /t/{task_id}?r=<recipient>&p=<role>&h=<holder group>&i=<issued, ms>&e=<expiry, s>&s=<HMAC>
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlencode

from gridline.contracts.v1 import common_pb2
from gridline.settings import Settings
from gridline.signed_links import LinkRefused, signature, verify
from gridline.timestamps import EPOCH

# The signed fields' query names, in signing order; `s` carries the signature.
_FIELDS = ("r", "p", "h", "i", "e")
# No field of a link we make is longer (ids are at most 64 characters): a longer one is not ours.
_LONGEST = 100
# What `urlencode` leaves as it is: ids, numbers, a role and the signature are all of these.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~\-]*")


class Role(StrEnum):
    """Why a recipient was told of the task, and so what their link lets them do."""

    CADRE = "cadre"
    LIAISON = "liaison"
    COMMUNITY = "community"
    TOWNSHIP_OFFICE = "township"
    COUNTY_OFFICE = "county"
    MICRO_GRID_LEADER = "leader"
    HEALTH_CENTRE = "health"


ROLE_ZH: dict[Role, str] = {
    Role.CADRE: "包户干部",
    Role.LIAISON: "联络员",
    Role.COMMUNITY: "社区",
    Role.TOWNSHIP_OFFICE: "镇联防联控办",
    Role.COUNTY_OFFICE: "县联防联控办",
    Role.MICRO_GRID_LEADER: "联户长",
    Role.HEALTH_CENTRE: "卫生院",
}

# A neighbour watching the household, and the health centre told of a fever, are told so that
# they can look and help: the task is the cadre's and the offices' to act on.
VIEW_ONLY = frozenset({Role.MICRO_GRID_LEADER, Role.HEALTH_CENTRE})

_LEVEL_ROLES: dict[int, Role] = {
    common_pb2.CHAIN_LEVEL_CADRE: Role.CADRE,
    common_pb2.CHAIN_LEVEL_LIAISON: Role.LIAISON,
    common_pb2.CHAIN_LEVEL_COMMUNITY: Role.COMMUNITY,
    common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE: Role.TOWNSHIP_OFFICE,
    common_pb2.CHAIN_LEVEL_COUNTY_OFFICE: Role.COUNTY_OFFICE,
}


def role_of(level: int) -> Role:
    """The role of a chain level; ValueError for a level that is none.

    A micro-grid leader and a health centre sit at the cadre's and the township's level: whoever
    tells them names their role.
    """
    try:
        return _LEVEL_ROLES[level]
    except KeyError:
        raise ValueError(f"chain level {level} is no recipient's level") from None


def _millis(moment: datetime) -> int:
    # Integer arithmetic: a hand-over and the notice it sends share one moment, and must compare
    # equal, which float timestamps do not promise.
    return (moment - EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class Grant:
    """What a genuine, unexpired link says: which task, to whom, under which holder, when."""

    task_id: str
    recipient: str  # the person's id, else the group's
    role: Role
    holder: str  # the group that held the task when the link was issued
    issued_at: datetime
    expires_at: datetime
    query: str  # the link's own query string, for the page's forms to post back with

    @property
    def acts(self) -> bool:
        """Whether the link may act on the task; otherwise it only shows it."""
        return self.role not in VIEW_ONLY

    def check_holder(self, holder: str, handed_over_at: datetime | None) -> None:
        """Nothing while the task is held as when the link was issued; LinkRefused otherwise.

        `holder` and `handed_over_at` are the task's now: its group, and when it last went to
        another holder (reassigned, or sent back to triage), None if it never did. A link
        issued before that moment is void, even if the task came back to the same group.
        """
        if holder != self.holder or (
            handed_over_at is not None and _millis(self.issued_at) < _millis(handed_over_at)
        ):
            raise LinkRefused("handed_over")


@dataclass(frozen=True)
class PageLinks:
    """Makes and checks the links to escalation's task page, with one key."""

    base_url: str
    key: bytes
    ttl: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> PageLinks:
        """The links of a deployment's settings."""
        return cls(
            settings.public_base_url,
            settings.task_link_key.get_secret_value().encode(),
            timedelta(seconds=settings.task_link_ttl_seconds),
        )

    def link(
        self,
        task_id: str,
        recipient: common_pb2.Responsible,
        *,
        holder: str,
        at: datetime,
        role: Role | None = None,
    ) -> str:
        """A link to the task's page for the notice to `recipient` made at `at`.

        It names the person when the notice does, else the group; `holder` is the group holding
        the task now; the role is the recipient's level's unless given. Valid for the
        configured time from `at`.
        """
        fields = {
            "r": recipient.person_id or recipient.group_id,
            "p": (role or role_of(recipient.level)).value,
            "h": holder,
            "i": str(_millis(at)),
            "e": str(int((at + self.ttl).timestamp())),
        }
        fields["s"] = signature(self.key, [task_id, *fields.values()])
        return f"{self.base_url.rstrip('/')}/t/{task_id}?{_query(fields)}"

    def check(self, task_id: str, query: Mapping[str, str], now: datetime) -> Grant:
        """What the link to `task_id` with this query grants at `now`.

        LinkRefused("invalid") when anything in it was changed (or it is not ours),
        LinkRefused("expired") once it expired. Whether the task is still held as when it was
        issued is the caller's to ask (`Grant.check_holder`): only the caller has the task.
        """
        values = [query.get(name, "") for name in _FIELDS]
        given = query.get("s", "")
        if any(len(value) > _LONGEST for value in (*values, given)):
            raise LinkRefused("invalid")
        verify(self.key, [task_id, *values], given)
        # Signed by us, so every field is as `link` wrote it.
        recipient, role, holder, issued, expires = values
        expires_at = datetime.fromtimestamp(int(expires), UTC)
        if now >= expires_at:
            raise LinkRefused("expired")
        return Grant(
            task_id=task_id,
            recipient=recipient,
            role=Role(role),
            holder=holder,
            issued_at=EPOCH + timedelta(milliseconds=int(issued)),
            expires_at=expires_at,
            query=urlencode({**dict(zip(_FIELDS, values, strict=True)), "s": given}),
        )


def _query(fields: Mapping[str, str]) -> str:
    """`urlencode(fields)`, joined directly when no value needs escaping (every link the
    platform makes: `urlencode` escapes each name and value through several calls)."""
    if all(_UNRESERVED.fullmatch(value) for value in fields.values()):
        return "&".join(f"{name}={value}" for name, value in fields.items())
    return urlencode(fields)


def notice_link(
    links: PageLinks | None,
    task_id: str,
    recipient: common_pb2.Responsible,
    *,
    holder: str,
    at: datetime,
    role: Role | None = None,
) -> str:
    """The link a notice to `recipient` carries (`PageLinks.link`), none without page links.

    Flows that tell people take their links from the app; a caller that gives none (a tool, a
    test of something else) sends notices without a link rather than with one nobody checks.
    """
    if links is None:
        return ""
    return links.link(task_id, recipient, holder=holder, at=at, role=role)
