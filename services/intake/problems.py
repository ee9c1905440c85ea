"""Refused fields as clients read them: the field path, the rule and a message.

A batch's per-record `problems` have this shape (inside its 200, they are no error of the
request); the request's own errors, its 422 included, are problems (`gridline.problems`), whose
`errors` name fields by the same paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field
from pydantic_core import ErrorDetails

from services.intake.schemas import SOURCE_NAMES

# Errors about the discriminator itself carry no field in their location.
TAG_ERRORS = {"union_tag_invalid", "union_tag_not_found"}


class Problem(BaseModel):
    """One rejected field."""

    field: str = Field(description="Path of the field, e.g. `phone` or `records[3].id_number`.")
    rule: str = Field(description="The rule it broke, e.g. `id_number.check_digit` or `missing`.")
    message: str = Field(description="What is wrong, for people.")


def field_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """`records[3].phone` from a pydantic location, leaving out the source tag."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in SOURCE_NAMES or path != prefix:
            path += f".{part}" if path else part
    return path


def problems_from(errors: Iterable[ErrorDetails], prefix: str = "") -> list[Problem]:
    """Problems from pydantic's `errors()`; locations are relative to one record."""
    found = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] in TAG_ERRORS:
            loc = (*loc, "source")
        found.append(
            Problem(
                field=field_path(loc, prefix) or "body", rule=error["type"], message=error["msg"]
            )
        )
    return found
