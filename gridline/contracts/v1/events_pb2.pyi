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

class TaskEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_EVENT_KIND_UNSPECIFIED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_ASSIGNED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_ACKNOWLEDGED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_COMPLETED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_VISITED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_MEASURE_STARTED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_SENT_TO_TRIAGE: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_REASSIGNED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_RISK_RAISED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_TEST_RECORDED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_OUTCOME_RECORDED: _ClassVar[TaskEventKind]
    TASK_EVENT_KIND_EARLY_END_REQUESTED: _ClassVar[TaskEventKind]

class NotificationKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTIFICATION_KIND_UNSPECIFIED: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_TASK_ASSIGNED: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_ESCALATION: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_CHANNEL_BROKEN: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_TEST: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_DAILY_SUMMARY: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_CASE_ENRICHED: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_REMINDER: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_RESIDENT_REMINDER: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_MEASURE_ENDING: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_REPORTED_UP: _ClassVar[NotificationKind]
    NOTIFICATION_KIND_APPROVAL_REQUESTED: _ClassVar[NotificationKind]

class DeliveryOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_OUTCOME_UNSPECIFIED: _ClassVar[DeliveryOutcome]
    DELIVERY_OUTCOME_DELIVERED: _ClassVar[DeliveryOutcome]
    DELIVERY_OUTCOME_FAILED: _ClassVar[DeliveryOutcome]
TASK_EVENT_KIND_UNSPECIFIED: TaskEventKind
TASK_EVENT_KIND_ASSIGNED: TaskEventKind
TASK_EVENT_KIND_ACKNOWLEDGED: TaskEventKind
TASK_EVENT_KIND_COMPLETED: TaskEventKind
TASK_EVENT_KIND_VISITED: TaskEventKind
TASK_EVENT_KIND_MEASURE_STARTED: TaskEventKind
TASK_EVENT_KIND_SENT_TO_TRIAGE: TaskEventKind
TASK_EVENT_KIND_REASSIGNED: TaskEventKind
TASK_EVENT_KIND_RISK_RAISED: TaskEventKind
TASK_EVENT_KIND_TEST_RECORDED: TaskEventKind
TASK_EVENT_KIND_OUTCOME_RECORDED: TaskEventKind
TASK_EVENT_KIND_EARLY_END_REQUESTED: TaskEventKind
NOTIFICATION_KIND_UNSPECIFIED: NotificationKind
NOTIFICATION_KIND_TASK_ASSIGNED: NotificationKind
NOTIFICATION_KIND_ESCALATION: NotificationKind
NOTIFICATION_KIND_CHANNEL_BROKEN: NotificationKind
NOTIFICATION_KIND_TEST: NotificationKind
NOTIFICATION_KIND_DAILY_SUMMARY: NotificationKind
NOTIFICATION_KIND_CASE_ENRICHED: NotificationKind
NOTIFICATION_KIND_REMINDER: NotificationKind
NOTIFICATION_KIND_RESIDENT_REMINDER: NotificationKind
NOTIFICATION_KIND_MEASURE_ENDING: NotificationKind
NOTIFICATION_KIND_REPORTED_UP: NotificationKind
NOTIFICATION_KIND_APPROVAL_REQUESTED: NotificationKind
DELIVERY_OUTCOME_UNSPECIFIED: DeliveryOutcome
DELIVERY_OUTCOME_DELIVERED: DeliveryOutcome
DELIVERY_OUTCOME_FAILED: DeliveryOutcome

class ReportAccepted(_message.Message):
    __slots__ = ("report_id", "person_key", "source", "source_record_id", "name_masked", "id_number_masked", "id_number_sealed", "phone_masked", "phone_sealed", "origin_region_code", "origin_name", "origin_risk", "arrived_at", "address", "accepted_at", "case_report_id", "name_sealed", "transport")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_MASKED_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_MASKED_FIELD_NUMBER: _ClassVar[int]
    ID_NUMBER_SEALED_FIELD_NUMBER: _ClassVar[int]
    PHONE_MASKED_FIELD_NUMBER: _ClassVar[int]
    PHONE_SEALED_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_REGION_CODE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_NAME_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_RISK_FIELD_NUMBER: _ClassVar[int]
    ARRIVED_AT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    CASE_REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_SEALED_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    person_key: str
    source: _common_pb2.ReportSource
    source_record_id: str
    name_masked: str
    id_number_masked: str
    id_number_sealed: bytes
    phone_masked: str
    phone_sealed: bytes
    origin_region_code: str
    origin_name: str
    origin_risk: _common_pb2.RiskLevel
    arrived_at: _timestamp_pb2.Timestamp
    address: str
    accepted_at: _timestamp_pb2.Timestamp
    case_report_id: str
    name_sealed: bytes
    transport: str
    def __init__(self, report_id: _Optional[str] = ..., person_key: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.ReportSource, str]] = ..., source_record_id: _Optional[str] = ..., name_masked: _Optional[str] = ..., id_number_masked: _Optional[str] = ..., id_number_sealed: _Optional[bytes] = ..., phone_masked: _Optional[str] = ..., phone_sealed: _Optional[bytes] = ..., origin_region_code: _Optional[str] = ..., origin_name: _Optional[str] = ..., origin_risk: _Optional[_Union[_common_pb2.RiskLevel, str]] = ..., arrived_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., address: _Optional[str] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., case_report_id: _Optional[str] = ..., name_sealed: _Optional[bytes] = ..., transport: _Optional[str] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "kind", "report_id", "person_key", "household_id", "grid_id", "community_id", "triage", "assignee", "origin_risk", "summary", "accepted_at", "occurred_at", "actor", "township_id", "placed_node_id", "placement_confidence", "candidate_node_ids", "decided_risk", "measure_id", "measure_name", "follow_up", "policy_version", "raised_by_report_id", "report_source", "state")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_KEY_FIELD_NUMBER: _ClassVar[int]
    HOUSEHOLD_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    COMMUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    TRIAGE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_RISK_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TOWNSHIP_ID_FIELD_NUMBER: _ClassVar[int]
    PLACED_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_RISK_FIELD_NUMBER: _ClassVar[int]
    MEASURE_ID_FIELD_NUMBER: _ClassVar[int]
    MEASURE_NAME_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    RAISED_BY_REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: TaskEventKind
    report_id: str
    person_key: str
    household_id: str
    grid_id: str
    community_id: str
    triage: bool
    assignee: _common_pb2.Responsible
    origin_risk: _common_pb2.RiskLevel
    summary: str
    accepted_at: _timestamp_pb2.Timestamp
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    township_id: str
    placed_node_id: str
    placement_confidence: float
    candidate_node_ids: _containers.RepeatedScalarFieldContainer[str]
    decided_risk: _common_pb2.RiskLevel
    measure_id: str
    measure_name: str
    follow_up: FollowUpPlan
    policy_version: str
    raised_by_report_id: str
    report_source: _common_pb2.ReportSource
    state: str
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[_Union[TaskEventKind, str]] = ..., report_id: _Optional[str] = ..., person_key: _Optional[str] = ..., household_id: _Optional[str] = ..., grid_id: _Optional[str] = ..., community_id: _Optional[str] = ..., triage: _Optional[bool] = ..., assignee: _Optional[_Union[_common_pb2.Responsible, _Mapping]] = ..., origin_risk: _Optional[_Union[_common_pb2.RiskLevel, str]] = ..., summary: _Optional[str] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., township_id: _Optional[str] = ..., placed_node_id: _Optional[str] = ..., placement_confidence: _Optional[float] = ..., candidate_node_ids: _Optional[_Iterable[str]] = ..., decided_risk: _Optional[_Union[_common_pb2.RiskLevel, str]] = ..., measure_id: _Optional[str] = ..., measure_name: _Optional[str] = ..., follow_up: _Optional[_Union[FollowUpPlan, _Mapping]] = ..., policy_version: _Optional[str] = ..., raised_by_report_id: _Optional[str] = ..., report_source: _Optional[_Union[_common_pb2.ReportSource, str]] = ..., state: _Optional[str] = ...) -> None: ...

class FollowUpPlan(_message.Message):
    __slots__ = ("plan_id", "measure_days", "test_days", "verify_within_hours", "home_visit", "check_in_times", "verify_by", "measure_ends_at")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    MEASURE_DAYS_FIELD_NUMBER: _ClassVar[int]
    TEST_DAYS_FIELD_NUMBER: _ClassVar[int]
    VERIFY_WITHIN_HOURS_FIELD_NUMBER: _ClassVar[int]
    HOME_VISIT_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_TIMES_FIELD_NUMBER: _ClassVar[int]
    VERIFY_BY_FIELD_NUMBER: _ClassVar[int]
    MEASURE_ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    measure_days: int
    test_days: _containers.RepeatedScalarFieldContainer[int]
    verify_within_hours: int
    home_visit: bool
    check_in_times: _containers.RepeatedScalarFieldContainer[str]
    verify_by: _timestamp_pb2.Timestamp
    measure_ends_at: _timestamp_pb2.Timestamp
    def __init__(self, plan_id: _Optional[str] = ..., measure_days: _Optional[int] = ..., test_days: _Optional[_Iterable[int]] = ..., verify_within_hours: _Optional[int] = ..., home_visit: _Optional[bool] = ..., check_in_times: _Optional[_Iterable[str]] = ..., verify_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., measure_ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EscalationRaised(_message.Message):
    __slots__ = ("escalation_id", "task_id", "level", "reason", "grid_id", "recipient", "raised_at")
    ESCALATION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GRID_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    RAISED_AT_FIELD_NUMBER: _ClassVar[int]
    escalation_id: str
    task_id: str
    level: _common_pb2.ChainLevel
    reason: str
    grid_id: str
    recipient: _common_pb2.Responsible
    raised_at: _timestamp_pb2.Timestamp
    def __init__(self, escalation_id: _Optional[str] = ..., task_id: _Optional[str] = ..., level: _Optional[_Union[_common_pb2.ChainLevel, str]] = ..., reason: _Optional[str] = ..., grid_id: _Optional[str] = ..., recipient: _Optional[_Union[_common_pb2.Responsible, _Mapping]] = ..., raised_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("notification_id", "kind", "recipient", "title", "body", "task_id", "report_id", "link", "created_at", "report_accepted_at", "deferrable")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REPORT_ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    DEFERRABLE_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    kind: NotificationKind
    recipient: _common_pb2.Responsible
    title: str
    body: str
    task_id: str
    report_id: str
    link: str
    created_at: _timestamp_pb2.Timestamp
    report_accepted_at: _timestamp_pb2.Timestamp
    deferrable: bool
    def __init__(self, notification_id: _Optional[str] = ..., kind: _Optional[_Union[NotificationKind, str]] = ..., recipient: _Optional[_Union[_common_pb2.Responsible, _Mapping]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., task_id: _Optional[str] = ..., report_id: _Optional[str] = ..., link: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., report_accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deferrable: _Optional[bool] = ...) -> None: ...

class DeliveryRecorded(_message.Message):
    __slots__ = ("notification_id", "channel", "group_id", "outcome", "attempts", "error", "finished_at")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    channel: str
    group_id: str
    outcome: DeliveryOutcome
    attempts: int
    error: str
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, notification_id: _Optional[str] = ..., channel: _Optional[str] = ..., group_id: _Optional[str] = ..., outcome: _Optional[_Union[DeliveryOutcome, str]] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
