"""Origins: China's divisions (GB/T 2260, province to county) and the place names people write.

The table and its matching live in `gridline.divisions`, because assignment reads the same table
(its address parser strips the county's province and prefecture from addresses); the table's
source, date and refresh are in gridline/divisions/README.md. Intake keeps these names.
"""

from __future__ import annotations

from gridline.divisions import Division, DivisionTable, division_table, to_simplified

Region = Division
RegionTable = DivisionTable

__all__ = ["Region", "RegionTable", "region_table", "to_simplified"]


def region_table() -> RegionTable:
    """The shipped GB/T 2260 table, its indexes built once per process."""
    return division_table()


# Built at import, so that the first report does not wait for the name indexes.
region_table()
