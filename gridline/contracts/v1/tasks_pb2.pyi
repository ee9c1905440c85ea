import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from gridline.contracts.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("task_id", "report_id", "state", "level", "triage", "grid_id", "summary", "deadline_at", "acknowledged_at", "escalations")
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
    def __init__(self, task_id: _Optional[str] = ..., report_id: _Optional[str] = ..., state: _Optional[str] = ..., level: _Optional[_Union[_common_pb2.ChainLevel, str]] = ..., triage: _Optional[bool] = ..., grid_id: _Optional[str] = ..., summary: _Optional[str] = ..., deadline_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., escalations: _Optional[_Iterable[_Union[TaskEscalation, _Mapping]]] = ...) -> None: ...
