"""The link itself: everything it names is signed, its life counts from its notice, and its role
decides whether it acts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.contracts.v1 import common_pb2
from gridline.links import PageLinks, Role, role_of
from gridline.signed_links import LinkRefused
from tests.links.conftest import CADRE, COMMUNITY, LEADER, LINKS, query_of

TASK = "3f2a9c0d5b7e4a1f8c6d2e0b9a7f5c3d"
# Day 1 of a quarantine at 9:00 Beijing time.
DAY_1 = datetime(2026, 1, 20, 1, 0, tzinfo=UTC)


def refused(task_id: str, query: dict[str, str], at: datetime, links: PageLinks = LINKS) -> str:
    with pytest.raises(LinkRefused) as caught:
        links.check(task_id, query, at)
    return caught.value.reason


def test_a_link_names_the_task_the_recipient_the_holder_and_its_times() -> None:
    link = LINKS.link(TASK, CADRE, holder=CADRE.group_id, at=DAY_1)
    assert link.startswith(f"http://gridline.test/t/{TASK}?r=p-zhang&p=cadre&h=g-cadre&i=")
    grant = LINKS.check(TASK, query_of(link), DAY_1)
    assert (grant.recipient, grant.role, grant.holder) == ("p-zhang", Role.CADRE, "g-cadre")
    assert (grant.issued_at, grant.expires_at) == (DAY_1, DAY_1 + timedelta(hours=72))
    assert grant.acts
    # A group told without a person is named by its group.
    group = LINKS.check(TASK, query_of(LINKS.link(TASK, COMMUNITY, holder="g", at=DAY_1)), DAY_1)
    assert (group.recipient, group.role) == ("g-community", Role.COMMUNITY)


def test_every_field_is_signed() -> None:
    query = query_of(LINKS.link(TASK, CADRE, holder=CADRE.group_id, at=DAY_1))
    changed = {
        "r": "p-someone-else",  # another recipient
        "p": "county",  # a higher role
        "h": "g-other",  # another holder
        "i": str(int(query["i"]) + 86_400_000),  # issued a day later
        "e": str(int(query["e"]) + 86_400),  # a day more
        "s": query["s"][:-1] + ("A" if query["s"][-1] != "A" else "B"),
    }
    for name, value in changed.items():
        assert refused(TASK, {**query, name: value}, DAY_1) == "invalid", name
    assert refused("another-task", query, DAY_1) == "invalid"
    assert refused(TASK, {k: v for k, v in query.items() if k != "r"}, DAY_1) == "invalid"
    other_key = PageLinks(LINKS.base_url, b"another-deployment", LINKS.ttl)
    assert refused(TASK, query, DAY_1, other_key) == "invalid"
    assert refused(TASK, {**query, "r": "x" * 500}, DAY_1) == "invalid"


def test_a_link_lives_its_time_from_its_own_notice() -> None:
    first = query_of(LINKS.link(TASK, CADRE, holder=CADRE.group_id, at=DAY_1))
    day_5 = DAY_1 + timedelta(days=4)
    later = query_of(LINKS.link(TASK, CADRE, holder=CADRE.group_id, at=day_5))
    day_6 = day_5 + timedelta(days=1)
    assert refused(TASK, first, day_6) == "expired"
    assert LINKS.check(TASK, later, day_6).issued_at == day_5
    assert refused(TASK, later, day_5 + timedelta(hours=72)) == "expired"


def test_a_hand_over_voids_the_links_issued_before_it() -> None:
    grant = LINKS.check(
        TASK, query_of(LINKS.link(TASK, CADRE, holder=CADRE.group_id, at=DAY_1)), DAY_1
    )
    grant.check_holder(CADRE.group_id, None)
    grant.check_holder(CADRE.group_id, DAY_1)  # the hand-over that sent this very link
    for holder, handed_over_at in (
        ("g-other", DAY_1 + timedelta(hours=1)),  # reassigned
        (CADRE.group_id, DAY_1 + timedelta(hours=1)),  # sent to triage, or back again
        ("g-other", None),
    ):
        with pytest.raises(LinkRefused, match="handed_over"):
            grant.check_holder(holder, handed_over_at)


def test_neighbours_and_health_centres_only_look() -> None:
    leader = LINKS.link(TASK, LEADER, holder=CADRE.group_id, at=DAY_1, role=Role.MICRO_GRID_LEADER)
    assert not LINKS.check(TASK, query_of(leader), DAY_1).acts
    assert role_of(LEADER.level) is Role.CADRE  # the leader's level alone would let it act
    acting = {role for role in Role if LINKS.check(
        TASK, query_of(LINKS.link(TASK, CADRE, holder="g", at=DAY_1, role=role)), DAY_1
    ).acts}  # fmt: skip
    assert acting == set(Role) - {Role.MICRO_GRID_LEADER, Role.HEALTH_CENTRE}
    with pytest.raises(ValueError, match="no recipient's level"):
        role_of(0)


def test_links_stay_short_enough_for_an_sms() -> None:
    # Ids of the Directory's length (up to 64 characters): the link still fits one long SMS.
    long_ids = common_pb2.Responsible(level=CADRE.level, person_id="p" * 64, group_id="g" * 64)
    link = LINKS.link("t" * 32, long_ids, holder="g" * 64, at=DAY_1)
    assert len(link) - len(LINKS.base_url) < 260


@given(st.text(min_size=1, max_size=30))
def test_a_holder_of_any_spelling_comes_back_from_its_link_as_issued(holder: str) -> None:
    # Ids the platform makes are plain; a directory's own ids may hold anything.
    link = LINKS.link(TASK, CADRE, holder=holder, at=DAY_1)
    assert urlsplit(link).query == urlencode(query_of(link))
    assert LINKS.check(TASK, query_of(link), DAY_1).holder == holder
