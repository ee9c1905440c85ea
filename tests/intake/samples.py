"""A valid report body for intake's tests."""

from __future__ import annotations

VALID_REPORT = {
    "source": "self_report",
    "name": "张伟",
    "id_number": "11010519491231002X",
    "phone": "13812345678",
    "origin_region_code": "310115",
    "origin_name": "上海市浦东新区",
    "origin_risk": "medium",
    "arrived_at": "2022-01-28T18:40:00+08:00",
    "address": "皋兰县石洞镇城北社区三汇小区23号楼3单元301室",
}
