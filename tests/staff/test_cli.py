"""`gridline staff add|list|token`: people of the local issuer and tokens the services trust."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from gridline.staff.roles import Role
from gridline.staff.roster import roster_path
from gridline_cli.main import app
from tests.staff import jwks
from tests.staff.tokens import verifier

runner = CliRunner()


async def test_a_recorded_person_gets_a_token_the_services_trust(tmp_path: Path) -> None:
    data_dir = ["--data-dir", str(tmp_path)]
    added = runner.invoke(
        app,
        ["staff", "add", "张伟", "--role", "community_staff", "--node", "cmA",
         "--subject", "p-cmA", *data_dir],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added p-cmA: 张伟, 社区工作人员 at community cmA" in added.output
    assert stat.S_IMODE(os.stat(roster_path(tmp_path)).st_mode) == 0o600
    listed = runner.invoke(app, ["staff", "list", *data_dir])
    assert "p-cmA" in listed.output and "tasks.reassign" in listed.output

    minted = runner.invoke(app, ["staff", "token", "p-cmA", "--minutes", "30", *data_dir])
    assert minted.exit_code == 0, minted.output
    token = minted.stdout.strip().splitlines()[0]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30 * 60
    async with verifier(tmp_path) as tokens:
        staff = await tokens.staff(token)
    assert (staff.subject, staff.name, staff.role, staff.node_id) == (
        "p-cmA", "张伟", Role.COMMUNITY_STAFF, "cmA"
    )  # fmt: skip

    moved = runner.invoke(
        app,
        ["staff", "add", "张伟", "--role", "township_office", "--node", "t1",
         "--subject", "p-cmA", *data_dir],
    )  # fmt: skip
    assert "changed p-cmA" in moved.output
    assert [e["role"] for e in json.loads(roster_path(tmp_path).read_text())] == ["township_office"]


def test_no_token_for_a_stranger_nor_beyond_a_day(tmp_path: Path) -> None:
    data_dir = ["--data-dir", str(tmp_path)]
    stranger = runner.invoke(app, ["staff", "token", "p-nobody", *data_dir])
    assert stranger.exit_code == 1 and "no staff 'p-nobody'" in stranger.output
    runner.invoke(app, ["staff", "add", "王芳", "--role", "cadre", "--node", "gA", *data_dir])
    (subject,) = [e["subject"] for e in json.loads(roster_path(tmp_path).read_text())]
    assert subject.startswith("staff-")
    long = runner.invoke(app, ["staff", "token", subject, "--minutes", "2000", *data_dir])
    assert long.exit_code == 1 and "1 to 1440 minutes" in long.output


def test_with_the_countys_provider_people_and_tokens_come_from_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDLINE_STAFF_OIDC_ISSUER", jwks.ISSUER)
    monkeypatch.setenv("GRIDLINE_STAFF_OIDC_JWKS_URL", f"{jwks.ISSUER}/certs")
    answer = runner.invoke(
        app,
        ["staff", "add", "张伟", "--role", "cadre", "--node", "gA", "--data-dir", str(tmp_path)],
    )
    assert answer.exit_code == 1 and "not the local issuer" in answer.output
