"""A deterministic demo county modelled on Gaolan county in early 2022 (seed 000).

Five communities of the county seat's town, about 20,400 households in compounds of buildings
and stairwell units, about 1,900 household cadres each covering one to three units
("1 cadre + N units + N households"), a liaison per compound, community staff, the township and
county joint prevention offices, and a chat group for each of them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from services.assignment.directory import Group, MicroGrid, Person, Role
from services.assignment.grid import Node, NodeKind

COUNTY_NAME = "皋兰县"
TOWNSHIP_NAME = "石洞镇"
COMMUNITIES = ("城北社区", "城关社区", "三川社区", "东湾社区", "西岔社区")
COMPOUNDS = (
    "三汇小区", "源丰小区", "金城花园", "兰苑小区", "惠民小区", "康乐家园", "西湖小区", "阳光家园",
    "滨河小区", "丽景苑", "书香苑", "盛世华庭", "北环小区", "石洞新村", "城关楼院", "粮站家属院",
    "水务家属院", "电力小区", "教师新村", "文化苑", "泰和家园", "福苑小区", "同心小区", "景泰苑",
    "长寿小区", "东湾家园", "西岔新村", "三川佳苑", "河畔人家", "鸿运小区", "安居小区", "锦绣家园",
    "建设楼院", "医院家属院", "幸福里", "和平小区", "振兴小区", "恒大名都", "嘉园小区", "怡景苑",
    "银河小区", "新华楼院", "民族小区", "公安家属院", "税务楼院", "金福苑", "瑞祥小区", "馨园小区",
    "紫荆花园", "南苑小区", "朝阳小区", "兴隆家园", "黄河小区", "丰泽苑", "兰亭小区", "富民家园",
    "祥和小区", "润泽苑", "翠屏小区", "鼎盛家园",
)  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红亮晓燕鹏飞斌宁琴婷雪梅海波"
TOTAL_HOUSEHOLDS = 20_407


@dataclass(frozen=True)
class County:
    """Everything the directory holds for one county."""

    nodes: list[Node]
    people: list[Person]
    groups: list[Group]
    micro_grids: list[MicroGrid] = field(default_factory=list)


class _Builder:
    def __init__(self, seed: int, taken_phones: set[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.nodes: list[Node] = []
        self.people: list[Person] = []
        self.groups: list[Group] = []
        self._phones: set[str] = set(taken_phones or ())

    def name(self) -> str:
        given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2))))
        return self.rng.choice(SURNAMES) + given

    def phone(self) -> str:
        while True:
            number = f"1{self.rng.choice('3578')}{self.rng.randrange(10**9):09d}"
            if number not in self._phones:
                self._phones.add(number)
                return number

    def person(self, person_id: str, role: Role, group_name: str, name: str | None = None) -> str:
        group_id = f"grp-{person_id}"
        self.groups.append(Group(id=group_id, name=group_name))
        self.people.append(
            Person(
                id=person_id,
                name=name or self.name(),
                role=role,
                phone=self.phone(),
                group_id=group_id,
            )
        )
        return person_id


def _compound_names() -> Iterator[str]:
    """The compound names, then their later phases (三汇小区二期) for a larger county."""
    yield from COMPOUNDS
    for phase in itertools.count(2):
        yield from (f"{name}{arabic_to_chinese(phase)}期" for name in COMPOUNDS)


def arabic_to_chinese(number: int) -> str:
    """2 → 二, 12 → 十二, 23 → 二十三 (up to 99)."""
    digits = "零一二三四五六七八九"
    tens, ones = divmod(number, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else digits[tens] + "十")
    return head + (digits[ones] if ones or not head else "")


def generate(seed: int = 2022, households: int = TOTAL_HOUSEHOLDS) -> County:
    """The demo county; the same seed (and size) always gives the same county."""
    b = _Builder(seed)
    county_office = b.person("p-county", Role.COUNTY_OFFICE, f"{COUNTY_NAME}联防联控办", "县联防办")
    b.nodes.append(Node("county", NodeKind.COUNTY, COUNTY_NAME, None, county_office))
    town_office = b.person("p-town", Role.TOWNSHIP_OFFICE, f"{TOWNSHIP_NAME}联防联控办", "镇联防办")
    b.nodes.append(Node("town-01", NodeKind.TOWNSHIP, TOWNSHIP_NAME, "county", town_office))

    per_community = households // len(COMMUNITIES)
    compounds = _compound_names()
    cadre_count = 0
    for c, community in enumerate(COMMUNITIES, start=1):
        community_id = f"cm{c:02d}"
        staff = b.person(f"p-{community_id}", Role.COMMUNITY_STAFF, f"{community}防控工作群")
        b.nodes.append(Node(community_id, NodeKind.COMMUNITY, community, "town-01", staff))
        wanted = per_community + (households % len(COMMUNITIES) if c == 1 else 0)
        made = 0
        g = 0
        while made < wanted:
            g += 1
            compound = next(compounds)
            grid_id = f"{community_id}-g{g:02d}"
            liaison = b.person(f"p-{grid_id}", Role.LIAISON, f"{compound}网格联络群")
            b.nodes.append(Node(grid_id, NodeKind.GRID, compound, community_id, liaison))
            cadre: str | None = None
            cadre_load = 0
            for building in range(1, b.rng.randint(10, 24) + 1):
                if made >= wanted:
                    break
                building_id = f"{grid_id}-b{building:02d}"
                b.nodes.append(Node(building_id, NodeKind.BUILDING, f"{building}号楼", grid_id))
                floors = b.rng.choice((4, 5, 6, 6))
                per_floor = b.rng.choice((1, 2, 2))
                for unit in range(1, b.rng.randint(2, 4) + 1):
                    if made >= wanted:
                        break
                    # A cadre takes whole units until they cover about eight households.
                    if cadre is None or cadre_load >= 7:
                        cadre_count += 1
                        cadre = b.person(f"p-cadre-{cadre_count:04d}", Role.CADRE, "", name=None)
                        cadre_load = 0
                    unit_id = f"{building_id}-u{unit}"
                    b.nodes.append(Node(unit_id, NodeKind.UNIT, f"{unit}单元", building_id, cadre))
                    for floor in range(1, floors + 1):
                        for door in range(1, per_floor + 1):
                            if made >= wanted:
                                break
                            room = f"{floor}{door:02d}"
                            address = (
                                f"{COUNTY_NAME}{TOWNSHIP_NAME}{community}{compound}"
                                f"{building}号楼{unit}单元{room}室"
                            )
                            b.nodes.append(
                                Node(
                                    f"{unit_id}-{room}",
                                    NodeKind.HOUSEHOLD,
                                    f"{room}室",
                                    unit_id,
                                    address=address,
                                )
                            )
                            made += 1
                            cadre_load += 1
    # Cadre groups are named once their person is known.
    people = {p.id: p for p in b.people}
    groups = [
        Group(g.id, g.name or f"包户干部{people[g.id.removeprefix('grp-')].name}工作群")
        for g in b.groups
    ]
    county = County(nodes=b.nodes, people=b.people, groups=groups)
    return _with_micro_grids(_with_backups(county), seed + 1)


def _with_backups(county: County) -> County:
    """Each cadre's backup is the next cadre of the same compound (the last one's, the first)."""
    parents = {n.id: n.parent_id for n in county.nodes}
    by_grid: dict[str, list[str]] = {}
    for node in county.nodes:
        if node.kind is NodeKind.UNIT and node.responsible_id:
            cadres = by_grid.setdefault(parents.get(node.parent_id or "") or "", [])
            if node.responsible_id not in cadres:
                cadres.append(node.responsible_id)
    backups: dict[str, str] = {}
    for cadres in by_grid.values():
        for i, cadre in enumerate(cadres):
            if len(cadres) > 1:
                backups[cadre] = cadres[(i + 1) % len(cadres)]
    people = [
        replace(p, chat_id=f"wx-{p.id}", backup_id=backups.get(p.id)) if p.role is Role.CADRE else p
        for p in county.people
    ]
    return replace(county, people=people)


def _with_micro_grids(county: County, seed: int) -> County:
    """Neighbouring households of each unit in micro-grids of three to five, each with a leader.

    A separate random stream, so the rest of the county stays as it was before micro-grids.
    """
    names = _Builder(seed, taken_phones={p.phone for p in county.people})
    by_unit: dict[str, list[int]] = {}
    for i, node in enumerate(county.nodes):
        if node.kind is NodeKind.HOUSEHOLD and node.parent_id:
            by_unit.setdefault(node.parent_id, []).append(i)
    nodes = list(county.nodes)
    micro_grids: list[MicroGrid] = []
    for unit_id, indexes in by_unit.items():
        start = 0
        while start < len(indexes):
            size = names.rng.randint(3, 5)
            # Never leave one or two households on their own at the end of a unit.
            if 0 < len(indexes) - start - size < 3:
                size = len(indexes) - start
            members = indexes[start : start + size]
            start += size
            micro_grid_id = f"{unit_id}-m{len(micro_grids) + 1:05d}"
            leader = names.person(f"p-{micro_grid_id}", Role.MICRO_GRID_LEADER, "")
            micro_grids.append(MicroGrid(micro_grid_id, f"{nodes[members[0]].name}等联户", leader))
            for i in members:
                nodes[i] = replace(nodes[i], micro_grid_id=micro_grid_id)
    leader_groups = [
        Group(g.id, f"联户长{p.name}") for g, p in zip(names.groups, names.people, strict=True)
    ]
    return County(
        nodes=nodes,
        people=county.people + names.people,
        groups=county.groups + leader_groups,
        micro_grids=micro_grids,
    )
