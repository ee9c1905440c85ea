"""The deadline policy `gridline up` runs: the documented one, and the demo's quick copy of it.

A county's run (`gridline up` on its own infrastructure) runs the policy the deployments ship
(services/escalation/deadlines.yaml), unless GRIDLINE_ESCALATION_DEADLINES_FILE names the county's
own. The demo runs the same policy with each of its minutes lasting a second: the same levels in
the same order, a high-risk arrival told at once, the whole ladder within minutes of a stream,
where the real one takes hours. Only durations (keys ending in `_minutes`) are scaled.
"""

from __future__ import annotations

from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from gridline.settings import env_name
from services.escalation.policy import load_policy

# The policy compose and Kubernetes ship (docs/escalation.md), wherever the package is installed.
SHIPPED_DEADLINES = Path(str(files("services.escalation").joinpath("deadlines.yaml")))
DEADLINES_VARIABLE = env_name("escalation_deadlines_file")
# The demo's clock: one minute of the policy lasts this many seconds.
DEMO_MINUTE_SECONDS = 1.0


def county_deadlines(environment: dict[str, str]) -> Path:
    """The policy file a run uses: the environment's GRIDLINE_ESCALATION_DEADLINES_FILE, else
    the shipped one."""
    given = environment.get(DEADLINES_VARIABLE, "")
    return Path(given) if given else SHIPPED_DEADLINES


def quickened(document: Any, minute_seconds: float) -> Any:
    """A policy document with every duration (`..._minutes`) shortened so that a minute lasts
    `minute_seconds`; everything else as it was."""
    if isinstance(document, list):
        return [quickened(item, minute_seconds) for item in document]
    if not isinstance(document, dict):
        return document
    factor = minute_seconds / 60.0
    result = {}
    for key, value in document.items():
        duration = isinstance(value, int | float) and not isinstance(value, bool)
        if duration and str(key).endswith("_minutes"):
            result[key] = value * factor
        else:
            result[key] = quickened(value, minute_seconds)
    return result


def write_demo_deadlines(source: Path, target: Path, minute_seconds: float) -> Path:
    """Write `source` quickened to `target` and check that escalation will load it."""
    document = yaml.safe_load(source.read_text(encoding="utf-8"))
    heading = (
        f"# {source}, each minute lasting {minute_seconds:g} s for the demo "
        "(written by `gridline up`; edit the source, not this file).\n"
    )
    target.write_text(
        heading + yaml.safe_dump(quickened(document, minute_seconds), allow_unicode=True),
        encoding="utf-8",
    )
    # A fault shows here, before any service starts; the fallback deadline is never used.
    load_policy(target, timedelta(minutes=30))
    return target
