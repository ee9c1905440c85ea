"""`gridline import` writes rejected rows by line and rule, never the person's data in clear."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import httpx

from gridline_cli.intake_import import BATCH_PATH, import_file
from tests.intake.samples import FEED_RECORD

NAME = "欧阳娜娜"
ID_NUMBER = "62010219900307123X"
PHONE = "13912345678"


def intake_refusing_everything(request: httpx.Request) -> httpx.Response:
    """Intake's batch answer with every record refused, quoting pieces of the ID as it does."""
    assert request.url.path == BATCH_PATH
    records = json.loads(request.content)["records"]
    problem = {
        "rule": "id_number.birth_date",
        "message": f"birth date {ID_NUMBER[6:14]} is not plausible",
    }
    return httpx.Response(
        200,
        json={
            "counts": {"rejected": len(records)},
            "results": [
                {
                    "index": i,
                    "status": "rejected",
                    "report_id": None,
                    "problems": [{"field": f"records[{i}].id_number", **problem}],
                }
                for i in range(len(records))
            ],
        },
    )


async def test_rejected_rows_are_written_without_clear_data(tmp_path: Path) -> None:
    row = {**FEED_RECORD, "name": NAME, "id_number": ID_NUMBER, "phone": PHONE}
    rows = [row, {**row, "source_record_id": ""}]
    path = tmp_path / "feed.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(rows)
    transport = httpx.MockTransport(intake_refusing_everything)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        summary = await import_file(path, client)
    assert summary.counts == {"rejected": 2}
    assert summary.rejected_file is not None
    written = summary.rejected_file.read_text(encoding="utf-8")
    for clear in (NAME, NAME[1:], ID_NUMBER, ID_NUMBER[6:14], PHONE, FEED_RECORD["address"]):
        assert clear not in written, clear
    first, second = (json.loads(line) for line in written.splitlines())
    assert not re.search(r"[0-9]{5,}", json.dumps([first["problems"], second["problems"]]))
    assert first == {
        "line": 2,
        "source_record_id": row["source_record_id"],
        "problems": [
            {
                "field": "records[0].id_number",
                "rule": "id_number.birth_date",
                "message": "birth date ******** is not plausible",
            }
        ],
    }
    assert second["line"] == 3 and second["source_record_id"].startswith("import-")
