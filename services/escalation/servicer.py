"""Escalation's gRPC Tasks service: the same reads and actions as the HTTP API and the page.

Reads and actions are staff methods: the caller's staff token decides what it may do and to
which tasks, as over HTTP (`services.escalation.access`), and the audit trail names the person
(a request's `actor` field is not taken). `FindTasks` is intake's report-status lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from gridline.contracts.enums import chain_level, risk_level
from gridline.contracts.v1 import tasks_pb2, tasks_pb2_grpc
from gridline.db import Database
from gridline.links import PageLinks
from gridline.rpc import abort
from gridline.staff.identity import Staff
from gridline.staff.roles import Permission
from gridline.staff.rpc import governed, internal_method, staff_method
from gridline.staff.tokens import TokenVerifier
from gridline.timestamps import from_timestamp, now, to_timestamp
from services.escalation import access, flows, storage, visit_flows
from services.escalation.check_ins import CheckInRules
from services.escalation.domain import (
    Action,
    ChangeRefused,
    Measure,
    MeasureRequired,
    TestResult,
    TransitionRefused,
)
from services.escalation.domain import allowed_actions as actions_allowed
from services.escalation.policy import DeadlinePolicy
from services.escalation.visits import OUTCOME_ZH, Outcome, VisitRefused

_MEASURES = {
    tasks_pb2.TASK_MEASURE_QUARANTINE: Measure.QUARANTINE,
    tasks_pb2.TASK_MEASURE_MONITORING: Measure.MONITORING,
}
_RESULTS = {
    tasks_pb2.TEST_RESULT_NEGATIVE: TestResult.NEGATIVE,
    tasks_pb2.TEST_RESULT_POSITIVE: TestResult.POSITIVE,
    tasks_pb2.TEST_RESULT_NOT_TAKEN: TestResult.NOT_TAKEN,
}
_VISIT_OUTCOMES = {
    tasks_pb2.VISIT_OUTCOME_MET: Outcome.MET,
    tasks_pb2.VISIT_OUTCOME_NOBODY_HOME: Outcome.NOBODY_HOME,
    tasks_pb2.VISIT_OUTCOME_REFUSED: Outcome.REFUSED,
    tasks_pb2.VISIT_OUTCOME_MOVED_OUT: Outcome.MOVED_OUT,
    tasks_pb2.VISIT_OUTCOME_NEW_ARRIVAL: Outcome.NEW_ARRIVAL,
}
_VISIT_NUMBERS = {outcome: number for number, outcome in _VISIT_OUTCOMES.items()}
_OUTCOME_REQUIRED = "outcome: 请选择入户结果（已见面、无人在家、拒绝配合、已搬离、发现新来返人员）"
_RESULT_NUMBERS = {result: number for number, result in _RESULTS.items()}
_OUTCOMES = {
    tasks_pb2.CASE_OUTCOME_LEFT: Action.RECORD_LEFT,
    tasks_pb2.CASE_OUTCOME_NOT_FOUND: Action.RECORD_NOT_FOUND,
    tasks_pb2.CASE_OUTCOME_HOSPITAL: Action.TO_HOSPITAL,
    tasks_pb2.CASE_OUTCOME_CENTRAL_ISOLATION: Action.TO_ISOLATION,
}


def task_message(
    task: storage.Task,
    escalations: Sequence[storage.Escalation],
    tests: Sequence[storage.TestRecord] = (),
) -> tasks_pb2.Task:
    """The contract form of a task, with its test results when given."""
    message = tasks_pb2.Task(
        task_id=task.task_id,
        report_id=task.report_id,
        state=task.state,
        level=chain_level(task.level),
        triage=task.triage,
        grid_id=task.grid_id,
        summary=task.summary,
        measure=task.measure or "",
        origin_risk=risk_level(task.origin_risk),
        assignee_group_id=task.assignee_group_id,
        allowed_actions=[a.value for a in actions_allowed(task.state)],
        escalations=[
            tasks_pb2.TaskEscalation(
                level=chain_level(e.level),
                reason=e.reason,
                group_id=e.group_id,
                raised_at=to_timestamp(e.raised_at),
            )
            for e in escalations
        ],
        test_results=[
            tasks_pb2.TaskTestResult(
                test_day=t.test_day,
                result=_RESULT_NUMBERS.get(TestResult(t.result), tasks_pb2.TEST_RESULT_UNSPECIFIED),
                actor=t.actor,
                recorded_at=to_timestamp(t.recorded_at),
            )
            for t in tests
        ],
    )
    for name in ("verify_by", "measure_started_at", "measure_ends_at"):
        moment = getattr(task, name)
        if moment is not None:
            getattr(message, name).CopyFrom(to_timestamp(moment))
    if task.deadline_at is not None:
        message.deadline_at.CopyFrom(to_timestamp(task.deadline_at))
    if task.acknowledged_at is not None:
        message.acknowledged_at.CopyFrom(to_timestamp(task.acknowledged_at))
    return message


@governed(tasks_pb2.DESCRIPTOR.services_by_name["Tasks"])
class TasksServicer(tasks_pb2_grpc.TasksServicer):
    """Reads and acts on tasks for staff tools and other systems."""

    def __init__(
        self,
        db: Database,
        policy: DeadlinePolicy,
        place_of: flows.PlaceLookup,
        staff_tokens: TokenVerifier,
        check_ins: CheckInRules | None = None,
        links: PageLinks | None = None,
        household_of: visit_flows.PlaceLookup | None = None,
    ) -> None:
        self._db = db
        self._policy = policy
        # Asked where a reassignment's node is, and whether it exists (`flows.locate`).
        self._place_of = place_of
        self.staff_tokens = staff_tokens
        self._check_ins = check_ins
        # A reassignment's notice carries a link for its new holder.
        self._links = links
        # Asked where a visited household is, and whether it is one (`DirectoryClient.household`).
        self._household_of = household_of

    @staff_method
    async def GetTask(
        self, request: tasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """One task and its escalations."""
        staff.require(Permission.TASKS_READ, Permission.MEASURES_READ)
        async with self._db.session() as session:
            task = await storage.get_task(session, request.task_id)
            if task is None:
                await abort(context, grpc.StatusCode.NOT_FOUND, f"no task {request.task_id!r}")
            access.check_read(staff, task)
            escalations = await storage.escalations_of(session, request.task_id)
            tests = await storage.test_records_of(session, request.task_id)
        return task_message(task, escalations, tests)

    @internal_method
    async def FindTasks(
        self, request: tasks_pb2.FindTasksRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.FindTasksResponse:
        """The tasks of a report."""
        async with self._db.session() as session:
            tasks = await storage.tasks_of_report(session, request.report_id)
            return tasks_pb2.FindTasksResponse(
                tasks=[
                    task_message(t, await storage.escalations_of(session, t.task_id)) for t in tasks
                ]
            )

    @staff_method
    async def ListTaskChanges(
        self,
        request: tasks_pb2.ListTaskChangesRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> tasks_pb2.ListTaskChangesResponse:
        """The task's audit trail, oldest first."""
        staff.require(Permission.TASKS_READ, Permission.MEASURES_READ)
        async with self._db.session() as session:
            task = await storage.get_task(session, request.task_id)
            if task is None:
                await abort(context, grpc.StatusCode.NOT_FOUND, f"no task {request.task_id!r}")
            access.check_read(staff, task)
            changes = await storage.changes_of(session, request.task_id)
        return tasks_pb2.ListTaskChangesResponse(
            changes=[
                tasks_pb2.TaskChange(
                    version=c.version, action=c.action, from_state=c.from_state,
                    to_state=c.to_state, actor=c.actor, channel=c.channel, note=c.note,
                    changed_at=to_timestamp(c.changed_at),
                )
                for c in changes
            ]
        )  # fmt: skip

    @staff_method
    async def RecordHouseholdVisit(
        self,
        request: tasks_pb2.RecordHouseholdVisitRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> tasks_pb2.HouseholdVisit:
        """Record a visit to a household under the caller's node (入户), as over HTTP."""
        staff.require(Permission.TASKS_ACT)
        outcome = _VISIT_OUTCOMES.get(request.outcome)
        if outcome is None:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, _OUTCOME_REQUIRED)
        if self._household_of is None:
            await abort(
                context, grpc.StatusCode.FAILED_PRECONDITION, "未接入目录服务，不能记录入户"
            )
        moment = now()
        visited_at = moment
        if request.HasField("visited_at"):
            try:
                visited_at = from_timestamp(request.visited_at)
            except ValueError:  # seconds beyond what a Timestamp may hold (years 1–9999)
                await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "visited_at：时间无效")
        visit = visit_flows.Visit(
            request.household_id,
            outcome,
            visited_at,
            request.note[:500],
            request.submission_id[:100],
        )
        try:
            place = await visit_flows.locate(
                self._household_of, request.household_id, "household_id",
                visit_flows.no_household(request.household_id),
            )  # fmt: skip
            row = await visit_flows.record_visit(
                self._db, visit, place, staff, channel="grpc", moment=moment
            )
        except VisitRefused as refused:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"{refused.field}: {refused}")
        except grpc.aio.AioRpcError:
            await abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "暂时无法连接目录服务，入户记录未保存，请稍后重试",
            )
        found = Outcome(row.outcome)
        return tasks_pb2.HouseholdVisit(
            visit_id=row.visit_id, household_id=row.household_id, grid_id=row.grid_id,
            outcome=_VISIT_NUMBERS[found], outcome_label=OUTCOME_ZH[found],
            visited_at=to_timestamp(row.visited_at), visitor=row.visitor, note=row.note,
        )  # fmt: skip

    @staff_method
    async def Acknowledge(
        self, request: tasks_pb2.AcknowledgeRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """Acknowledge a task: its pending deadline is cancelled."""
        staff.require(Permission.TASKS_ACT)
        change = flows.Change(Action.ACKNOWLEDGE, staff.audit_name, "grpc")
        return await self._change(context, request.task_id, change, staff)

    @staff_method
    async def RecordVisit(
        self, request: tasks_pb2.TaskActionRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """Record the visit to the household."""
        return await self._simple(context, request, Action.RECORD_VISIT, staff)

    @staff_method
    async def EndMeasure(
        self, request: tasks_pb2.TaskActionRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """End the measure and close the task."""
        return await self._simple(context, request, Action.END_MEASURE, staff)

    @staff_method
    async def Close(
        self, request: tasks_pb2.TaskActionRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """Close the task without a measure."""
        return await self._simple(context, request, Action.CLOSE, staff)

    @staff_method
    async def SendToTriage(
        self, request: tasks_pb2.TaskActionRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """Send the task back to the community to place."""
        return await self._simple(context, request, Action.SEND_TO_TRIAGE, staff)

    @staff_method
    async def StartMeasure(
        self,
        request: tasks_pb2.StartMeasureRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> tasks_pb2.Task:
        """Start home quarantine or home health monitoring."""
        staff.require(Permission.TASKS_ACT)
        measure = _MEASURES.get(request.measure)
        if measure is None:
            await abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "measure: quarantine or monitoring"
            )
        change = flows.Change(
            Action.START_MEASURE, staff.audit_name, "grpc", note=request.note, measure=measure
        )
        return await self._change(context, request.task_id, change, staff)

    @staff_method
    async def Reassign(
        self, request: tasks_pb2.ReassignRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """Give the task to another holder; its deadlines start again.

        A `node_id` the Directory does not know is refused: INVALID_ARGUMENT, its details
        starting with `node_id.unknown`; one outside the caller's node, PERMISSION_DENIED.
        """
        staff.require(Permission.TASKS_REASSIGN)
        if not request.assignee.group_id or not request.assignee.level:
            await abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "assignee: level and group_id required"
            )
        place = None
        if request.node_id:
            try:
                place = await flows.locate(self._place_of, request.node_id)
            except flows.NodeUnknown as unknown:
                await abort(
                    context, grpc.StatusCode.INVALID_ARGUMENT, f"{flows.NODE_UNKNOWN}: {unknown}"
                )
            except grpc.aio.AioRpcError:
                await abort(
                    context,
                    grpc.StatusCode.UNAVAILABLE,
                    "暂时无法连接目录服务，未能核实改派的节点，任务未改派，请稍后重试",
                )
            access.check_reassign_to(staff, place)
        change = flows.Change(
            Action.REASSIGN, staff.audit_name, "grpc", note=request.note,
            assignee=request.assignee, node_id=request.node_id, place=place,
        )  # fmt: skip
        return await self._change(context, request.task_id, change, staff)

    @staff_method
    async def RecordTestResult(
        self,
        request: tasks_pb2.RecordTestResultRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> tasks_pb2.Task:
        """A test result; a positive one moves the case to transfer and goes up at once."""
        staff.require(Permission.TASKS_ACT)
        result = _RESULTS.get(request.result)
        if result is None:
            await abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, "result：须为阴性、阳性或未检测之一"
            )
        change = flows.Change(
            Action.RECORD_TEST, staff.audit_name, "grpc", note=request.note, result=result,
            source_id=request.source_id, authority=flows.staff_authority(staff),
        )  # fmt: skip
        return await self._change(context, request.task_id, change, staff)

    @staff_method
    async def RecordOutcome(
        self,
        request: tasks_pb2.RecordOutcomeRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> tasks_pb2.Task:
        """How the case ended: left again (note: destination), not found, hospital, isolation."""
        staff.require(Permission.TASKS_ACT)
        action = _OUTCOMES.get(request.outcome)
        if action is None:
            await abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "outcome：须为再次外出、查无此人、转运医院或转集中隔离之一",
            )
        change = flows.Change(
            action, staff.audit_name, "grpc", note=request.note,
            authority=flows.staff_authority(staff),
        )  # fmt: skip
        return await self._change(context, request.task_id, change, staff)

    @staff_method
    async def RequestEarlyEnd(
        self, request: tasks_pb2.TaskActionRequest, context: grpc.aio.ServicerContext, staff: Staff
    ) -> tasks_pb2.Task:
        """Ask to end the measure early (note: the reason); the township office decides."""
        return await self._simple(context, request, Action.REQUEST_EARLY_END, staff)

    @staff_method
    async def DecideEarlyEnd(
        self,
        request: tasks_pb2.DecideEarlyEndRequest,
        context: grpc.aio.ServicerContext,
        staff: Staff,
    ) -> tasks_pb2.Task:
        """The township office or above approves or refuses an early end."""
        staff.require(Permission.TASKS_ACT)
        action = Action.APPROVE_EARLY_END if request.approve else Action.REFUSE_EARLY_END
        flows.require_authority(staff, action)
        change = flows.Change(
            action, staff.audit_name, "grpc", note=request.note,
            authority=flows.staff_authority(staff),
        )  # fmt: skip
        return await self._change(context, request.task_id, change, staff)

    async def _simple(
        self,
        context: grpc.aio.ServicerContext,
        request: tasks_pb2.TaskActionRequest,
        action: Action,
        staff: Staff,
    ) -> tasks_pb2.Task:
        staff.require(Permission.TASKS_ACT)
        change = flows.Change(
            action, staff.audit_name, "grpc", note=request.note,
            authority=flows.staff_authority(staff),
        )  # fmt: skip
        return await self._change(context, request.task_id, change, staff)

    async def _change(
        self, context: grpc.aio.ServicerContext, task_id: str, change: flows.Change, staff: Staff
    ) -> tasks_pb2.Task:
        """Apply the change to a task in the caller's scope (`Forbidden` otherwise, which the
        staff guard turns into PERMISSION_DENIED)."""
        try:
            task, escalations = await flows.change_task(
                self._db, self._policy, task_id, change, check_ins=self._check_ins,
                guard=lambda task: access.check_act(staff, task), links=self._links,
            )  # fmt: skip
        except flows.TaskNotFound:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"no task {task_id!r}")
        except TransitionRefused as exc:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except MeasureRequired as exc:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except ChangeRefused as exc:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return task_message(task, escalations)
