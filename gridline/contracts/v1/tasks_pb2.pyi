import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from gridline.contracts.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TestResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEST_RESULT_UNSPECIFIED: _ClassVar[TestResult]
    TEST_RESULT_NEGATIVE: _ClassVar[TestResult]
    TEST_RESULT_POSITIVE: _ClassVar[TestResult]
    TEST_RESULT_NOT_TAKEN: _ClassVar[TestResult]

class CaseOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_OUTCOME_UNSPECIFIED: _ClassVar[CaseOutcome]
    CASE_OUTCOME_LEFT: _ClassVar[CaseOutcome]
    CASE_OUTCOME_NOT_FOUND: _ClassVar[CaseOutcome]
    CASE_OUTCOME_HOSPITAL: _ClassVar[CaseOutcome]
    CASE_OUTCOME_CENTRAL_ISOLATION: _ClassVar[CaseOutcome]

class TaskMeasure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_MEASURE_UNSPECIFIED: _ClassVar[TaskMeasure]
    TASK_MEASURE_QUARANTINE: _ClassVar[TaskMeasure]
    TASK_MEASURE_MONITORING: _ClassVar[TaskMeasure]

class VisitOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VISIT_OUTCOME_UNSPECIFIED: _ClassVar[VisitOutcome]
    VISIT_OUTCOME_MET: _ClassVar[VisitOutcome]
    VISIT_OUTCOME_NOBODY_HOME: _ClassVar[VisitOutcome]
    VISIT_OUTCOME_REFUSED: _ClassVar[VisitOutcome]
    VISIT_OUTCOME_MOVED_OUT: _ClassVar[VisitOutcome]
    VISIT_OUTCOME_NEW_ARRIVAL: _ClassVar[VisitOutcome]
TEST_RESULT_UNSPECIFIED: TestResult
TEST_RESULT_NEGATIVE: TestResult
TEST_RESULT_POSITIVE: TestResult
TEST_RESULT_NOT_TAKEN: TestResult
CASE_OUTCOME_UNSPECIFIED: CaseOutcome
CASE_OUTCOME_LEFT: CaseOutcome
CASE_OUTCOME_NOT_FOUND: CaseOutcome
CASE_OUTCOME_HOSPITAL: CaseOutcome
CASE_OUTCOME_CENTRAL_ISOLATION: CaseOutcome
TASK_MEASURE_UNSPECIFIED: TaskMeasure
TASK_MEASURE_QUARANTINE: TaskMeasure
TASK_MEASURE_MONITORING: TaskMeasure
VISIT_OUTCOME_UNSPECIFIED: VisitOutcome
VISIT_OUTCOME_MET: VisitOutcome
VISIT_OUTCOME_NOBODY_HOME: VisitOutcome
VISIT_OUTCOME_REFUSED: VisitOutcome
VISIT_OUTCOME_MOVED_OUT: VisitOutcome
VISIT_OUTCOME_NEW_ARRIVAL: VisitOutcome

class RecordTestResultRequest(_message.Message):
    __slots__ = ("task_id", "result", "note", "source_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    result: TestResult
    note: str
    source_id: str
    def __init__(self, task_id: _Optional[str] = ..., result: _Optional[_Union[TestResult, str]] = ..., note: _Optional[str] = ..., source_id: _Optional[str] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("task_id", "outcome", "note")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    outcome: CaseOutcome
    note: str
    def __init__(self, task_id: _Optional[str] = ..., outcome: _Optional[_Union[CaseOutcome, str]] = ..., note: _Optional[str] = ...) -> None: ...

class DecideEarlyEndRequest(_message.Message):
    __slots__ = ("task_id", "approve", "note")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    approve: bool
    note: str
    def __init__(self, task_id: _Optional[str] = ..., approve: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class TaskActionRequest(_message.Message):
    __slots__ = ("task_id", "actor", "note")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    actor: str
    note: str
    def __init__(self, task_id: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class StartMeasureRequest(_message.Message):
    __slots__ = ("task_id", "actor", "note", "measure")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    actor: str
    note: str
    measure: TaskMeasure
    def __init__(self, task_id: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ..., measure: _Optional[_Union[TaskMeasure, str]] = ...) -> None: ...

class ReassignRequest(_message.Message):
    __slots__ = ("task_id", "actor", "note", "assignee", "node_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    actor: str
    note: str
    assignee: _common_pb2.Responsible
    node_id: str
    def __init__(self, task_id: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ..., assignee: _Optional[_Union[_common_pb2.Responsible, _Mapping]] = ..., node_id: _Optional[str] = ...) -> None: ...

class ListTaskChangesRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class TaskChange(_message.Message):
    __slots__ = ("version", "action", "from_state", "to_state", "actor", "channel", "note", "changed_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    action: str
    from_state: str
    to_state: str
    actor: str
    channel: str
    note: str
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., action: _Optional[str] = ..., from_state: _Optional[str] = ..., to_state: _Optional[str] = ..., actor: _Optional[str] = ..., channel: _Optional[str] = ..., note: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTaskChangesResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[TaskChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[TaskChange, _Mapping]]] = ...) -> None: ...

class RecordHouseholdVisitRequest(_message.Message):
    __slots__ = ("household_id", "outcome", "visited_at", "note", "submission_id")
    HOUSEHOLD_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VISITED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    household_id: str
    outcome: VisitOutcome
    visited_at: _timestamp_pb2.Timestamp
    note: str
    submission_id: str
    def __init__(self, household_id: _Optional[str] = ..., outcome: _Optional[_Union[VisitOutcome, str]] = ..., visited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., submission_id: _Optional[str] = ...) -> None: ...

class HouseholdVisit(_message.Message):
    __slots__ = ("visit_id", "household_id", "grid_id", "outcome", "outcome_label", "visited_at", "visitor", "note")
    VISIT_ID_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_LABEL_FIELD_NUMBER: _ClassVar[int]
    VISITED_AT_FIELD_NUMBER: _ClassVar[int]
    VISITOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    visit_id: str
    household_id: str
    grid_id: str
    outcome: VisitOutcome
    outcome_label: str
    visited_at: _timestamp_pb2.Timestamp
    visitor: str
    note: str
    def __init__(self, visit_id: _Optional[str] = ..., household_id: _Optional[str] = ..., grid_id: _Optional[str] = ..., outcome: _Optional[_Union[VisitOutcome, str]] = ..., outcome_label: _Optional[str] = ..., visited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., visitor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class FindTasksRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class FindTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ...) -> None: ...

class AcknowledgeRequest(_message.Message):
    __slots__ = ("task_id", "actor")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    actor: str
    def __init__(self, task_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class TaskEscalation(_message.Message):
    __slots__ = ("level", "reason", "group_id", "raised_at")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    level: _common_pb2.ChainLevel
    reason: str
    group_id: str
    raised_at: _timestamp_pb2.Timestamp
    def __init__(self, level: _Optional[_Union[_common_pb2.ChainLevel, str]] = ..., reason: _Optional[str] = ..., group_id: _Optional[str] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "report_id", "state", "level", "triage", "grid_id", "summary", "deadline_at", "acknowledged_at", "escalations", "measure", "origin_risk", "assignee_group_id", "allowed_actions", "verify_by", "measure_started_at", "measure_ends_at", "test_results")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    ESCALATIONS_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_RISK_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    VERIFY_BY_FIELD_NUMBER: _ClassVar[int]
    MEASURE_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    MEASURE_ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    TEST_RESULTS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    report_id: str
    state: str
    level: _common_pb2.ChainLevel
    triage: bool
    grid_id: str
    summary: str
    deadline_at: _timestamp_pb2.Timestamp
    acknowledged_at: _timestamp_pb2.Timestamp
    escalations: _containers.RepeatedCompositeFieldContainer[TaskEscalation]
    measure: str
    origin_risk: _common_pb2.RiskLevel
    assignee_group_id: str
    allowed_actions: _containers.RepeatedScalarFieldContainer[str]
    verify_by: _timestamp_pb2.Timestamp
    measure_started_at: _timestamp_pb2.Timestamp
    measure_ends_at: _timestamp_pb2.Timestamp
    test_results: _containers.RepeatedCompositeFieldContainer[TaskTestResult]
    def __init__(self, task_id: _Optional[str] = ..., report_id: _Optional[str] = ..., state: _Optional[str] = ..., level: _Optional[_Union[_common_pb2.ChainLevel, str]] = ..., triage: _Optional[bool] = ..., grid_id: _Optional[str] = ..., summary: _Optional[str] = ..., deadline_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., escalations: _Optional[_Iterable[_Union[TaskEscalation, _Mapping]]] = ..., measure: _Optional[str] = ..., origin_risk: _Optional[_Union[_common_pb2.RiskLevel, str]] = ..., assignee_group_id: _Optional[str] = ..., allowed_actions: _Optional[_Iterable[str]] = ..., verify_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., measure_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., measure_ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test_results: _Optional[_Iterable[_Union[TaskTestResult, _Mapping]]] = ...) -> None: ...

class TaskTestResult(_message.Message):
    __slots__ = ("test_day", "result", "actor", "recorded_at")
    TEST_DAY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    test_day: int
    result: TestResult
    actor: str
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, test_day: _Optional[int] = ..., result: _Optional[_Union[TestResult, str]] = ..., actor: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
