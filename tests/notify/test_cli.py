"""`gridline notify test GROUP` and `gridline notify seal` against the loopback vendors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridline_cli.main import app
from tests.notify import vendors as v
from tests.notify.vendors import Vendors

runner = CliRunner()


@pytest.fixture
def env(vendors: Vendors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    good = runner.invoke(app, ["notify", "seal", v.DINGTALK_TOKEN]).stdout.strip()
    secret = runner.invoke(app, ["notify", "seal", v.DINGTALK_SECRET]).stdout.strip()
    wrong = runner.invoke(app, ["notify", "seal", "SECwrong"]).stdout.strip()
    assert good.startswith("sealed:") and v.DINGTALK_TOKEN not in good
    groups = tmp_path / "groups.yaml"
    groups.write_text(
        f"""groups:
  g-ok: {{robot: {{kind: dingtalk, key: "{good}", secret: "{secret}"}}}}
  g-bad: {{robot: {{kind: dingtalk, key: "{good}", secret: "{wrong}"}}}}
  g-none: {{sms: true}}
"""
    )
    return {
        "GRIDLINE_NOTIFY_GROUPS_FILE": str(groups),
        "GRIDLINE_NOTIFY_DINGTALK_BASE_URL": f"{vendors.url}/dingtalk",
        "GRIDLINE_DATA_DIR": str(tmp_path),
    }


def test_a_good_robot_gets_the_test_message(env: dict[str, str], vendors: Vendors) -> None:
    result = runner.invoke(app, ["notify", "test", "g-ok"], env=env)
    assert result.exit_code == 0, result.output
    assert "dingtalk: sent" in result.output
    [request] = vendors.of("dingtalk", ok=True)
    assert "测试" in json.loads(request.raw)["markdown"]["text"]


def test_a_wrong_secret_is_reported_with_the_vendor_code(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["notify", "test", "g-bad"], env=env)
    assert result.exit_code == 1
    assert "310000" in result.output


@pytest.mark.parametrize(
    ("group", "says"), [("g-nope", "not in the groups file"), ("g-none", "no robot")]
)
def test_groups_without_a_robot_get_a_clear_error(
    env: dict[str, str], group: str, says: str
) -> None:
    result = runner.invoke(app, ["notify", "test", group], env=env)
    assert result.exit_code == 2
    assert says in result.output
