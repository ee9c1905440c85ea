"""The groups file: sealed secrets, clear errors, office lookup."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gridline.personal import Sealer
from gridline.settings import Settings
from services.notify.groups import GroupsFileError, load_groups, parse_groups, seal_secret

SEALER = Sealer(Settings().pii_key.get_secret_value())


def test_sealed_secrets_unseal_and_never_sit_in_clear(tmp_path: Path) -> None:
    sealed_key, sealed_secret = seal_secret(SEALER, "k-1"), seal_secret(SEALER, "SEC-1")
    path = tmp_path / "groups.yaml"
    path.write_text(
        f"""
groups:
  g-1:
    robot: {{kind: dingtalk, key: "{sealed_key}", secret: "{sealed_secret}"}}
    sms: true
offices: {{3: g-community, 5: g-county}}
""",
        encoding="utf-8",
    )
    assert "k-1" not in path.read_text() and "SEC-1" not in path.read_text()
    config = load_groups(path, SEALER)
    robot = config.group("g-1").robot
    assert robot is not None
    assert robot.key.get_secret_value() == "k-1"
    assert robot.secret.get_secret_value() == "SEC-1"
    assert "k-1" not in robot.robot_id
    assert config.group("unknown").robot is None
    assert config.office_for(1) == "g-community"
    assert config.office_for(4) == "g-county"


def test_a_value_sealed_with_another_key_is_named() -> None:
    other = Sealer(base64.urlsafe_b64encode(b"another-key-of-thirty-two-bytes!").decode())
    text = f'groups: {{g-1: {{robot: {{kind: wecom, key: "{seal_secret(other, "k")}"}}}}}}'
    with pytest.raises(GroupsFileError, match=r"groups\.g-1\.robot\.key"):
        parse_groups(text, SEALER, "groups")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("groups: {g-1: {robot: {kind: telegram, key: x}}}", "kind"),
        ("groups: {g-1: {robot: {kind: wecom}}}", "key"),
        ("groups: {g-1: {colour: red}}", "colour"),
        ("- a list", "mapping"),
        ("groups: [", "YAML"),
    ],
)
def test_bad_files_get_specific_errors(text: str, named: str) -> None:
    with pytest.raises(GroupsFileError, match=named):
        parse_groups(text, SEALER)
