from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_SOURCE_UNSPECIFIED: _ClassVar[ReportSource]
    REPORT_SOURCE_HEALTH_CODE_FEED: _ClassVar[ReportSource]
    REPORT_SOURCE_SELF_REPORT: _ClassVar[ReportSource]
    REPORT_SOURCE_CADRE_VISIT: _ClassVar[ReportSource]
    REPORT_SOURCE_CHECKPOINT_SCAN: _ClassVar[ReportSource]
    REPORT_SOURCE_NEIGHBOUR: _ClassVar[ReportSource]

class RiskLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_LEVEL_UNSPECIFIED: _ClassVar[RiskLevel]
    RISK_LEVEL_LOW: _ClassVar[RiskLevel]
    RISK_LEVEL_MEDIUM: _ClassVar[RiskLevel]
    RISK_LEVEL_HIGH: _ClassVar[RiskLevel]

class ChainLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAIN_LEVEL_UNSPECIFIED: _ClassVar[ChainLevel]
    CHAIN_LEVEL_CADRE: _ClassVar[ChainLevel]
    CHAIN_LEVEL_LIAISON: _ClassVar[ChainLevel]
    CHAIN_LEVEL_COMMUNITY: _ClassVar[ChainLevel]
    CHAIN_LEVEL_TOWNSHIP_OFFICE: _ClassVar[ChainLevel]
    CHAIN_LEVEL_COUNTY_OFFICE: _ClassVar[ChainLevel]
REPORT_SOURCE_UNSPECIFIED: ReportSource
REPORT_SOURCE_HEALTH_CODE_FEED: ReportSource
REPORT_SOURCE_SELF_REPORT: ReportSource
REPORT_SOURCE_CADRE_VISIT: ReportSource
REPORT_SOURCE_CHECKPOINT_SCAN: ReportSource
REPORT_SOURCE_NEIGHBOUR: ReportSource
RISK_LEVEL_UNSPECIFIED: RiskLevel
RISK_LEVEL_LOW: RiskLevel
RISK_LEVEL_MEDIUM: RiskLevel
RISK_LEVEL_HIGH: RiskLevel
CHAIN_LEVEL_UNSPECIFIED: ChainLevel
CHAIN_LEVEL_CADRE: ChainLevel
CHAIN_LEVEL_LIAISON: ChainLevel
CHAIN_LEVEL_COMMUNITY: ChainLevel
CHAIN_LEVEL_TOWNSHIP_OFFICE: ChainLevel
CHAIN_LEVEL_COUNTY_OFFICE: ChainLevel

class Responsible(_message.Message):
    __slots__ = ("level", "person_id", "person_name", "phone", "group_id", "group_name")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PERSON_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    level: ChainLevel
    person_id: str
    person_name: str
    phone: str
    group_id: str
    group_name: str
    def __init__(self, level: _Optional[_Union[ChainLevel, str]] = ..., person_id: _Optional[str] = ..., person_name: _Optional[str] = ..., phone: _Optional[str] = ..., group_id: _Optional[str] = ..., group_name: _Optional[str] = ...) -> None: ...
