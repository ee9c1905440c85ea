"""The generated contracts match proto/."""

from __future__ import annotations

from pathlib import Path

from gridline.bus.envelope import EVENT_TYPES
from gridline.contracts.codegen import PACKAGE_PATH, REPO_ROOT, generate


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    generated = {p.name: p.read_bytes() for p in generate(tmp_path) if p.is_file()}
    committed_dir = REPO_ROOT / PACKAGE_PATH
    committed = {p.name: p.read_bytes() for p in committed_dir.iterdir() if p.is_file()}
    stale = sorted(
        n for n in generated.keys() | committed.keys() if generated.get(n) != committed.get(n)
    )
    assert not stale, f"run `./dev contracts`: stale or missing {stale}"


def test_every_topic_payload_is_registered_for_decoding() -> None:
    assert set(EVENT_TYPES) == {
        "gridline.contracts.v1.ReportAccepted",
        "gridline.contracts.v1.TaskEvent",
        "gridline.contracts.v1.EscalationRaised",
        "gridline.contracts.v1.Notification",
        "gridline.contracts.v1.DeliveryRecorded",
    }
