"""`gridline import`: a feed export through intake's validation, rerun without doubling."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from gridline.embedded import EmbeddedBroker
from gridline_cli.intake_import import import_file
from tests.intake.conftest import running_intake
from tests.intake.samples import FEED_RECORD
from tests.intake.test_routes import reports_on_topic

FIELDS = [*FEED_RECORD, "document_type"]


def feed_rows(count: int, run: str) -> list[dict[str, Any]]:
    """Feed rows; every fifth has a bad phone, every seventh no record id."""
    rows = []
    for i in range(count):
        row = {**FEED_RECORD, "source_record_id": f"{run}-{i:03d}", "name": f"张{i}"}
        if i % 5 == 4:
            row["phone"] = "2381234567"
        if i % 7 == 6:
            row["source_record_id"] = ""
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


async def test_csv_import_reports_rejects_and_reruns_without_doubling(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    rows = feed_rows(30, run=f"csv-{tmp_path.name}")
    half = write_csv(tmp_path / "half.csv", rows[:13])
    full = write_csv(tmp_path / "feed.csv", rows)
    async with running_intake(broker.bootstrap, tmp_path) as (client, _):
        interrupted = await import_file(half, client)
        first = await import_file(full, client)
        again = await import_file(full, client)
    assert interrupted.counts == {"accepted": 11, "rejected": 2}
    assert first.counts == {"duplicate": 11, "accepted": 13, "rejected": 6}
    assert again.counts == {"duplicate": 24, "rejected": 6}
    assert first.rejected_file is not None
    rejected = [json.loads(line) for line in first.rejected_file.read_text().splitlines()]
    assert [r["line"] for r in rejected] == [6, 11, 16, 21, 26, 31]  # header is line 1
    assert {r["problems"][0]["field"] for r in rejected} == {
        f"records[{i}].phone" for i in (4, 9, 14, 19, 24, 29)
    }
    explicit = [r["source_record_id"] for i, r in enumerate(rows) if i % 5 != 4 and i % 7 != 6]
    on_topic = [
        r.source_record_id
        for r in await reports_on_topic(broker.bootstrap)
        if r.source_record_id in explicit
    ]
    assert sorted(on_topic) == sorted(explicit)  # each once, after three imports


async def test_jsonl_import_numbers_rejects_by_line(broker: EmbeddedBroker, tmp_path: Path) -> None:
    rows = feed_rows(10, run=f"jsonl-{tmp_path.name}")
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    async with running_intake(broker.bootstrap, tmp_path) as (client, _):
        summary = await import_file(path, client)
    assert summary.counts == {"accepted": 8, "rejected": 2}
    assert summary.rejected_file is not None
    lines = [json.loads(x)["line"] for x in summary.rejected_file.read_text().splitlines()]
    assert lines == [5, 10]
