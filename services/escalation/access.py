"""Who may see and act on a task: the same rules for the HTTP routes and the gRPC servicer.

A task is in a staff member's scope when its place (`storage.place_of`: its grid, community and
township) lies under their node. The health centre sees only the tasks of people under a
measure (quarantine or monitoring), whose tests and fevers it follows; every other reader sees
every task in scope.
"""

from __future__ import annotations

from gridline.staff.identity import Forbidden, Place, Staff
from gridline.staff.roles import Permission
from services.escalation import storage

TASK = "该任务"


def measures_only(staff: Staff) -> bool:
    """Whether the staff member reads only the tasks of people under a measure."""
    return not staff.may(Permission.TASKS_READ)


def check_read(staff: Staff, task: storage.Task) -> None:
    """Forbidden unless the staff member may read the task (role checked before)."""
    staff.require_scope(storage.place_of(task), TASK)
    if measures_only(staff) and task.measure is None:
        raise Forbidden("该人员未在居家隔离或健康监测中，卫生院无需查看其任务")


def check_act(staff: Staff, task: storage.Task) -> None:
    """Forbidden unless the task is in the staff member's scope (role checked before)."""
    staff.require_scope(storage.place_of(task), TASK)


def check_reassign_to(staff: Staff, place: Place) -> None:
    """Forbidden unless the node a task is reassigned to is in the staff member's scope: a
    task that belongs elsewhere goes up to the office above both, which places it."""
    staff.require_scope(place, "改派的目标节点")
