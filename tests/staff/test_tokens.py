"""Staff tokens: the local issuer's key and mints, what a verifier refuses and why (in words an
office worker reads), and an identity provider's keys fetched, kept and refreshed."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import ValidationError

from gridline.settings import Settings
from gridline.staff.identity import NotSignedIn, Place
from gridline.staff.issuer import LocalIssuer, key_path
from gridline.staff.roles import PERMISSIONS, Permission, Role
from gridline.staff.tokens import (
    KEYS_TTL_SECONDS,
    UNKNOWN_KEY_REFETCH_SECONDS,
    KeysUnavailable,
    RemoteKeys,
    TokenVerifier,
)
from gridline.timestamps import now
from tests.staff import jwks
from tests.staff.tokens import person, token, verifier


async def test_the_local_issuer_keeps_one_key_that_the_services_trust(tmp_path: Path) -> None:
    first, second = LocalIssuer(tmp_path), LocalIssuer(tmp_path)
    assert first.key_id == second.key_id
    assert stat.S_IMODE(os.stat(key_path(tmp_path)).st_mode) == 0o600
    async with verifier(tmp_path) as tokens:
        staff = await tokens.staff(token(tmp_path, Role.LIAISON, "gA"))
    assert staff == person(Role.LIAISON, "gA")
    assert staff.audit_name == "测试联络员（联络员，liaison@gA）"


def test_a_key_made_by_two_processes_at_once_is_the_one_linked_first(tmp_path: Path) -> None:
    issuer = LocalIssuer(tmp_path)
    # Another process lost the race: its key is written, its link refused, the first one kept.
    issuer._create()
    assert LocalIssuer(tmp_path).key_id == issuer.key_id
    assert [p.name for p in key_path(tmp_path).parent.iterdir()] == ["issuer-key.pem"]


def test_a_local_token_lives_a_day_at_most(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 to 1440 minutes"):
        token(tmp_path, Role.CADRE, "gA", minutes=1441)


def forged(tmp_path: Path, **claims: object) -> str:
    """A token of the local issuer with claims changed or left out (None)."""
    issuer = LocalIssuer(tmp_path)
    moment = now()
    body = {
        "iss": "gridline-local", "aud": "gridline", "sub": "p-1", "name": "张伟",
        "role": "cadre", "node_id": "gA", "iat": moment,
        "exp": moment + timedelta(minutes=5),
    } | claims  # fmt: skip
    present = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(present, issuer._key, algorithm="ES256", headers={"kid": issuer.key_id})


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": now() - timedelta(minutes=5)}, "登录凭证已过期，请重新登录"),
        ({"aud": "another-system"}, "登录凭证不是签发给本系统的，请重新登录"),
        ({"iss": "someone-else"}, "登录凭证的签发方不受信任，请重新登录"),
        ({"exp": None}, "登录凭证缺少必需的信息，请重新登录"),
        ({"role": "mayor"}, "登录凭证中的角色（mayor）不是本系统的角色，请联系管理员"),
        ({"role": ["cadre"]}, "登录凭证中的角色（['cadre']）不是本系统的角色，请联系管理员"),
        ({"node_id": ""}, "登录凭证缺少所属网格节点（node_id），请联系管理员"),
    ],
)
async def test_a_token_that_does_not_hold_is_refused_with_its_reason(
    tmp_path: Path, claims: dict[str, object], reason: str
) -> None:
    async with verifier(tmp_path) as tokens:
        with pytest.raises(NotSignedIn) as refused:
            await tokens.staff(forged(tmp_path, **claims))
    assert str(refused.value) == reason


async def test_a_name_left_out_is_the_subject(tmp_path: Path) -> None:
    async with verifier(tmp_path) as tokens:
        staff = await tokens.staff(forged(tmp_path, name=None))
    assert staff.name == "p-1"


async def test_unsigned_shared_secret_and_other_issuers_tokens_are_refused(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other"
    claims = {"iss": "gridline-local", "aud": "gridline", "sub": "p-1", "role": "county_office",
              "node_id": "c", "exp": now() + timedelta(minutes=5)}  # fmt: skip
    # The public key is no secret: a token "signed" with it as an HMAC key proves nothing.
    public = LocalIssuer(tmp_path).public_jwk()
    attempts = [
        # PyJWT reads "" as no key for "none", as it does None (which its signature leaves out).
        jwt.encode(claims, "", algorithm="none"),
        jwt.encode(claims, public["x"], algorithm="HS256"),
        token(other, Role.COUNTY_OFFICE, "c"),
        "not.a.token",
    ]
    async with verifier(tmp_path) as tokens:
        for attempt in attempts:
            with pytest.raises(NotSignedIn):
                await tokens.staff(attempt)


def test_scope_is_decided_on_the_level_of_the_roles_node() -> None:
    place = Place(township_id="t1", community_id="cmA", grid_id="gA")
    covering = {
        (Role.COUNTY_OFFICE, "c"): True,
        (Role.OPERATOR, "c"): True,
        (Role.TOWNSHIP_OFFICE, "t1"): True,
        (Role.TOWNSHIP_OFFICE, "t2"): False,
        (Role.HEALTH_CENTRE, "t1"): True,
        (Role.COMMUNITY_STAFF, "cmA"): True,
        (Role.COMMUNITY_STAFF, "cmB"): False,
        (Role.LIAISON, "gA"): True,
        (Role.CADRE, "gB"): False,
    }
    for (role, node), covers in covering.items():
        assert person(role, node).covers(place) is covers, (role, node)
    # An unknown place (a task from before places were kept) is the county office's alone.
    assert person(Role.COUNTY_OFFICE, "c").covers(Place())
    assert not person(Role.COMMUNITY_STAFF, "").covers(Place())


def test_only_the_county_office_changes_risk_areas_and_the_operator_sees_no_task() -> None:
    assert [r for r in Role if Permission.RISK_AREAS_CHANGE in PERMISSIONS[r]] == [
        Role.COUNTY_OFFICE
    ]
    assert PERMISSIONS[Role.OPERATOR].isdisjoint(
        {Permission.TASKS_READ, Permission.MEASURES_READ, Permission.TASKS_ACT}
    )
    assert all(Permission.RISK_AREAS_READ in allowed for allowed in PERMISSIONS.values())


def test_an_issuer_comes_with_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLINE_STAFF_OIDC_ISSUER", jwks.ISSUER)
    with pytest.raises(ValidationError, match="set together"):
        Settings()


async def test_the_providers_keys_are_fetched_once_and_refreshed_on_rotation() -> None:
    clock = [0.0]
    with jwks.serving(jwks.Provider()) as provider:
        provider.add_key("k1")
        keys = RemoteKeys(provider.url, httpx.AsyncClient(), clock=lambda: clock[0])
        tokens = TokenVerifier(keys, issuer=jwks.ISSUER, audience="gridline")
        async with tokens:
            for _ in range(3):
                assert (await tokens.staff(provider.token("k1"))).name == "李主任"
            assert provider.fetches == 1
            # A made-up key id fetches again at most every UNKNOWN_KEY_REFETCH_SECONDS.
            provider.add_key("k-unknown", publish=False)
            clock[0] += UNKNOWN_KEY_REFETCH_SECONDS
            for _ in range(3):
                with pytest.raises(NotSignedIn, match="签名密钥不在"):
                    await tokens.staff(provider.token("k-unknown"))
            assert provider.fetches == 2
            # The provider rotates: the new key is fetched once the refetch is due.
            provider.add_key("k2")
            clock[0] += UNKNOWN_KEY_REFETCH_SECONDS
            assert (await tokens.staff(provider.token("k2"))).subject == "u-1001"
            assert provider.fetches == 3
            # The provider down: the keys in hand still serve.
            provider.down = True
            clock[0] += KEYS_TTL_SECONDS
            assert (await tokens.staff(provider.token("k1"))).role is Role.COUNTY_OFFICE


async def test_no_token_can_be_checked_before_the_providers_keys_are_had() -> None:
    with jwks.serving(jwks.Provider()) as provider:
        provider.add_key("k1")
        provider.down = True
        async with TokenVerifier(
            RemoteKeys(provider.url, httpx.AsyncClient()), issuer=jwks.ISSUER, audience="gridline"
        ) as tokens:
            with pytest.raises(KeysUnavailable, match="暂时无法取得身份认证服务的公钥"):
                await tokens.staff(provider.token("k1"))
