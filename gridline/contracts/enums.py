"""The contracts' enums where services hold them as plain numbers.

A protobuf enum value is an int at run time, and that is how the services store a chain level
or a risk. The generated stubs accept only the enum's own type in a message's constructor, so
these give a stored number that type, unchanged.
"""

from __future__ import annotations

from typing import cast

from gridline.contracts.v1 import common_pb2


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
