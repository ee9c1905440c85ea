"""The contracts' enums: their names in files and APIs, their words in Chinese, stored numbers.

A protobuf enum value is an int at run time, and that is how the services store a chain level
or a risk. The generated stubs accept only the enum's own type in a message's constructor, so
`chain_level` and `risk_level` give a stored number that type, unchanged. The maps below are
the one place each name and each word is written.
"""

from __future__ import annotations

from typing import Literal, cast

from gridline.contracts.v1 import common_pb2

RiskName = Literal["low", "medium", "high"]
SourceName = Literal[
    "health_code_feed", "self_report", "cadre_visit", "checkpoint_scan", "neighbour"
]
ChainLevelName = Literal["cadre", "liaison", "community", "township_office", "county_office"]

RISK_LEVELS: dict[RiskName, common_pb2.RiskLevel] = {
    "low": common_pb2.RISK_LEVEL_LOW,
    "medium": common_pb2.RISK_LEVEL_MEDIUM,
    "high": common_pb2.RISK_LEVEL_HIGH,
}
# As people read a risk: 高风险地区 (`risk_zh` puts the word together).
RISK_ZH: dict[int, str] = {
    common_pb2.RISK_LEVEL_LOW: "低",
    common_pb2.RISK_LEVEL_MEDIUM: "中",
    common_pb2.RISK_LEVEL_HIGH: "高",
}

REPORT_SOURCES: dict[SourceName, common_pb2.ReportSource] = {
    "health_code_feed": common_pb2.REPORT_SOURCE_HEALTH_CODE_FEED,
    "self_report": common_pb2.REPORT_SOURCE_SELF_REPORT,
    "cadre_visit": common_pb2.REPORT_SOURCE_CADRE_VISIT,
    "checkpoint_scan": common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN,
    "neighbour": common_pb2.REPORT_SOURCE_NEIGHBOUR,
}
REPORT_SOURCE_NAMES: dict[int, SourceName] = {
    number: name for name, number in REPORT_SOURCES.items()
}
# The words of docs/glossary.md: how the seeds name each way an arrival is found.
SOURCE_ZH: dict[int, str] = {
    common_pb2.REPORT_SOURCE_HEALTH_CODE_FEED: "健康码平台推送",
    common_pb2.REPORT_SOURCE_SELF_REPORT: "本人主动报备",
    common_pb2.REPORT_SOURCE_CADRE_VISIT: "包户干部入户排摸",
    common_pb2.REPORT_SOURCE_CHECKPOINT_SCAN: "卡口扫码",
    common_pb2.REPORT_SOURCE_NEIGHBOUR: "四邻联防小组",
}

# From the bottom of the chain up.
CHAIN_LEVELS: dict[ChainLevelName, common_pb2.ChainLevel] = {
    "cadre": common_pb2.CHAIN_LEVEL_CADRE,
    "liaison": common_pb2.CHAIN_LEVEL_LIAISON,
    "community": common_pb2.CHAIN_LEVEL_COMMUNITY,
    "township_office": common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE,
    "county_office": common_pb2.CHAIN_LEVEL_COUNTY_OFFICE,
}
CHAIN_LEVEL_ZH: dict[int, str] = {
    common_pb2.CHAIN_LEVEL_CADRE: "包户干部",
    common_pb2.CHAIN_LEVEL_LIAISON: "联络员",
    common_pb2.CHAIN_LEVEL_COMMUNITY: "社区",
    common_pb2.CHAIN_LEVEL_TOWNSHIP_OFFICE: "镇联防联控办",
    common_pb2.CHAIN_LEVEL_COUNTY_OFFICE: "县联防联控办",
}


def risk_zh(number: int) -> str:
    """A RiskLevel number as people say it: `高风险`; `风险未定` for none."""
    level = RISK_ZH.get(number)
    return f"{level}风险" if level else "风险未定"


def source_zh(number: int) -> str:
    """A ReportSource number as people say it: `本人主动报备`; `其他途径` for none."""
    return SOURCE_ZH.get(number, "其他途径")


def chain_level(number: int) -> common_pb2.ChainLevel:
    """A stored chain level as the contracts' ChainLevel (the same int)."""
    return cast("common_pb2.ChainLevel", number)


def risk_level(number: int) -> common_pb2.RiskLevel:
    """A stored risk as the contracts' RiskLevel (the same int)."""
    return cast("common_pb2.RiskLevel", number)


def chain_level_label(number: int) -> str:
    """A ChainLevel number as a label: `cadre`, `liaison`, `community`, ..."""
    # Named for the checker: protobuf's enum wrapper is untyped without its stub package.
    name: str = common_pb2.ChainLevel.Name(number)
    return name.removeprefix("CHAIN_LEVEL_").lower()
