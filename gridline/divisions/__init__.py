"""China's administrative divisions (GB/T 2260) and the names people write for them."""

from gridline.divisions.table import (
    COUNTY,
    PREFECTURE,
    PROVINCE,
    SOURCE_FILE,
    TABLE_FILE,
    Division,
    DivisionTable,
    division_table,
    normalize,
    shortened_forms,
    table_source,
    to_simplified,
)

__all__ = [
    "COUNTY",
    "PREFECTURE",
    "PROVINCE",
    "SOURCE_FILE",
    "TABLE_FILE",
    "Division",
    "DivisionTable",
    "division_table",
    "normalize",
    "shortened_forms",
    "table_source",
    "to_simplified",
]
