"""Who staff are (roles), what each role may do (permissions), and at which level of the grid
its node sits.

The chain of the seeds (cadre › liaison › community › township office › county office) plus the
township health centre, which follows people under a measure (tests, fevers), and the operator,
who runs the platform and sees no one's personal data.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A staff member's role, as the `role` claim of their token names it."""

    COUNTY_OFFICE = "county_office"
    TOWNSHIP_OFFICE = "township_office"
    COMMUNITY_STAFF = "community_staff"
    LIAISON = "liaison"
    CADRE = "cadre"
    HEALTH_CENTRE = "health_centre"
    OPERATOR = "operator"


ROLE_ZH: dict[Role, str] = {
    Role.COUNTY_OFFICE: "县联防联控办",
    Role.TOWNSHIP_OFFICE: "镇联防联控办",
    Role.COMMUNITY_STAFF: "社区工作人员",
    Role.LIAISON: "联络员",
    Role.CADRE: "包户干部",
    Role.HEALTH_CENTRE: "卫生院",
    Role.OPERATOR: "运维人员",
}


class Level(StrEnum):
    """The level of the grid a role's node is at; its scope is everything under that node."""

    COUNTY = "county"
    TOWNSHIP = "township"
    COMMUNITY = "community"
    GRID = "grid"


ROLE_LEVEL: dict[Role, Level] = {
    Role.COUNTY_OFFICE: Level.COUNTY,
    Role.TOWNSHIP_OFFICE: Level.TOWNSHIP,
    Role.COMMUNITY_STAFF: Level.COMMUNITY,
    # A liaison collects from the cadres of a grid; a cadre's units are in one grid, and the
    # backup who covers a cadre on leave is a cadre of the same grid.
    Role.LIAISON: Level.GRID,
    Role.CADRE: Level.GRID,
    Role.HEALTH_CENTRE: Level.TOWNSHIP,
    # The operator's permissions are county-wide and touch no one's task.
    Role.OPERATOR: Level.COUNTY,
}

LEVEL_ZH: dict[Level, str] = {
    Level.COUNTY: "全县",
    Level.TOWNSHIP: "乡镇（街道）",
    Level.COMMUNITY: "社区",
    Level.GRID: "网格",
}


class Permission(StrEnum):
    """One kind of operator action."""

    TASKS_READ = "tasks.read"
    # Only the tasks of people under a measure (quarantine or monitoring): the health centre's.
    MEASURES_READ = "measures.read"
    TASKS_ACT = "tasks.act"
    TASKS_REASSIGN = "tasks.reassign"
    ZERO_REPORTS_SUBMIT = "zero_reports.submit"
    ZERO_REPORTS_READ = "zero_reports.read"
    DUTY_MANAGE = "duty.manage"
    RISK_AREAS_READ = "risk_areas.read"
    RISK_AREAS_CHANGE = "risk_areas.change"
    DELIVERIES_READ = "deliveries.read"


PERMISSION_ZH: dict[Permission, str] = {
    Permission.TASKS_READ: "查看任务",
    Permission.MEASURES_READ: "查看管控中人员的任务",
    Permission.TASKS_ACT: "处理任务",
    Permission.TASKS_REASSIGN: "改派任务",
    Permission.ZERO_REPORTS_SUBMIT: "报送每日零报告",
    Permission.ZERO_REPORTS_READ: "查看每日零报告",
    Permission.DUTY_MANAGE: "调整包户干部的在岗状态",
    Permission.RISK_AREAS_READ: "查看风险地区",
    Permission.RISK_AREAS_CHANGE: "调整风险地区",
    Permission.DELIVERIES_READ: "查看通知送达情况",
}

_CHAIN_WORK = frozenset({Permission.TASKS_READ, Permission.TASKS_ACT, Permission.RISK_AREAS_READ})

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.COUNTY_OFFICE: _CHAIN_WORK
    | {
        Permission.TASKS_REASSIGN,
        Permission.ZERO_REPORTS_READ,
        Permission.DUTY_MANAGE,
        # Risk areas decide every arrival's measure: the county office alone changes them.
        Permission.RISK_AREAS_CHANGE,
        Permission.DELIVERIES_READ,
    },
    Role.TOWNSHIP_OFFICE: _CHAIN_WORK
    | {Permission.TASKS_REASSIGN, Permission.ZERO_REPORTS_READ, Permission.DUTY_MANAGE},
    Role.COMMUNITY_STAFF: _CHAIN_WORK
    | {
        Permission.TASKS_REASSIGN,
        Permission.ZERO_REPORTS_SUBMIT,
        Permission.ZERO_REPORTS_READ,
        Permission.DUTY_MANAGE,
    },
    Role.LIAISON: _CHAIN_WORK
    | {Permission.TASKS_REASSIGN, Permission.ZERO_REPORTS_SUBMIT, Permission.ZERO_REPORTS_READ},
    # A task not in the cadre's care goes back to triage (an action), never straight to another.
    # A cadre files the day's zero report of their grid (the workbench's form, issue 17).
    Role.CADRE: _CHAIN_WORK | {Permission.ZERO_REPORTS_SUBMIT},
    Role.HEALTH_CENTRE: frozenset({Permission.MEASURES_READ, Permission.RISK_AREAS_READ}),
    Role.OPERATOR: frozenset({Permission.DELIVERIES_READ, Permission.RISK_AREAS_READ}),
}
