"""Valid record bodies for intake's tests, one per source."""

from __future__ import annotations

from typing import Any

VALID_REPORT: dict[str, Any] = {
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

FEED_RECORD: dict[str, Any] = {
    **VALID_REPORT,
    "source": "health_code_feed",
    "source_record_id": "lzbb-20220128-000123",
}

CHECKPOINT_SCAN: dict[str, Any] = {
    **{k: v for k, v in VALID_REPORT.items() if k != "origin_risk"},
    "source": "checkpoint_scan",
    "checkpoint_id": "gaolan-toll-01",
    "health_code": "yellow",
}
