"""Staff bearer tokens (OIDC/JWT) checked against the configured issuer's keys.

With `GRIDLINE_STAFF_OIDC_ISSUER` and `GRIDLINE_STAFF_OIDC_JWKS_URL` set, tokens of the county's
identity provider are taken; without, those of the local issuer (`gridline staff token`). Either
way a token must be signed with an asymmetric key of the issuer's JWKS, name the issuer and the
audience (`GRIDLINE_STAFF_OIDC_AUDIENCE`), be unexpired, and carry `sub`, `role` (a `Role`) and
`node_id`; `name` (the display name, falling back to `sub`) is what the audit trail shows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, Self

import httpx
import jwt

from gridline.settings import Settings
from gridline.staff.identity import NotSignedIn, Staff
from gridline.staff.issuer import LOCAL_ISSUER, LocalIssuer
from gridline.staff.roles import Role

# Asymmetric algorithms only: a shared secret would let every service mint tokens, and `none`
# would let anyone.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
# Clocks of the identity provider and the services may differ this much.
LEEWAY_SECONDS = 30
# How long fetched keys are used before they are fetched again (a provider rotates rarely).
KEYS_TTL_SECONDS = 300.0
# A token naming a key the set lacks fetches the set again, at most this often: otherwise
# made-up key ids would make every request a fetch from the provider.
UNKNOWN_KEY_REFETCH_SECONDS = 30.0
NODE_ID_LENGTH = 64


class KeysUnavailable(Exception):
    """The issuer's keys cannot be had just now and none are known (HTTP 503, gRPC
    UNAVAILABLE): no token can be checked, whoever sends it."""


class KeySet(Protocol):
    """Where the issuer's public keys come from."""

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        """The key of `key_id` (None: the only key); NotSignedIn for an unknown one."""
        ...

    async def close(self) -> None:
        """Release what the set holds open."""
        ...


def _pick(keys: jwt.PyJWKSet, key_id: str | None) -> jwt.PyJWK | None:
    if key_id is None:
        return keys.keys[0] if len(keys.keys) == 1 else None
    return next((k for k in keys.keys if k.key_id == key_id), None)


class StaticKeys:
    """A JWKS known in advance (the local issuer's)."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = jwt.PyJWKSet.from_dict(jwks)

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        """The key of `key_id`; NotSignedIn for one not in the set."""
        found = _pick(self._keys, key_id)
        if found is None:
            raise NotSignedIn("登录凭证的签名密钥不受信任，请重新登录")
        return found

    async def close(self) -> None:
        """Nothing is held open."""


class RemoteKeys:
    """The JWKS at a URL, fetched without blocking the event loop and kept `KEYS_TTL_SECONDS`.

    PyJWT's own `PyJWKClient` fetches with blocking urllib and again on every unknown key id;
    this fetches with httpx, at most every `UNKNOWN_KEY_REFETCH_SECONDS` for unknown ids, and
    keeps the last keys while the provider cannot be reached.
    """

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._clock = clock
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = -KEYS_TTL_SECONDS
        self._lock = asyncio.Lock()

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        """The key of `key_id`, fetching the set when it is old or lacks the key."""
        if self._keys is None or self._clock() - self._fetched_at >= KEYS_TTL_SECONDS:
            await self._fetch(older_than=KEYS_TTL_SECONDS)
        found = _pick(self._keys, key_id) if self._keys else None
        if found is None:
            await self._fetch(older_than=UNKNOWN_KEY_REFETCH_SECONDS)
            found = _pick(self._keys, key_id) if self._keys else None
        if found is None:
            raise NotSignedIn("登录凭证的签名密钥不在身份认证服务公布的密钥中，请重新登录")
        return found

    async def _fetch(self, *, older_than: float) -> None:
        async with self._lock:
            # Another request may have fetched while this one waited for the lock.
            if self._keys is not None and self._clock() - self._fetched_at < older_than:
                return
            try:
                answer = await self._client.get(self._url)
                answer.raise_for_status()
                self._keys = jwt.PyJWKSet.from_dict(answer.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as error:
                if self._keys is None:
                    raise KeysUnavailable(
                        "暂时无法取得身份认证服务的公钥，无法核验登录凭证，请稍后重试"
                    ) from error
            # Also after a failure: the keys in hand serve until the next try is due.
            self._fetched_at = self._clock()

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


_REFUSALS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "登录凭证已过期，请重新登录"),
    (jwt.ImmatureSignatureError, "登录凭证尚未生效，请检查电脑或手机的时间后重试"),
    (jwt.InvalidAudienceError, "登录凭证不是签发给本系统的，请重新登录"),
    (jwt.InvalidIssuerError, "登录凭证的签发方不受信任，请重新登录"),
    (jwt.MissingRequiredClaimError, "登录凭证缺少必需的信息，请重新登录"),
]


class TokenVerifier:
    """Checks staff tokens of one issuer and audience; `staff(token)` is the person."""

    def __init__(self, keys: KeySet, *, issuer: str, audience: str) -> None:
        self._keys = keys
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """The configured issuer's verifier; the local issuer's when none is configured (its
        key is made in the data directory on first use)."""
        if settings.staff_oidc_issuer:
            keys: KeySet = RemoteKeys(settings.staff_oidc_jwks_url, httpx.AsyncClient(timeout=5.0))
            issuer = settings.staff_oidc_issuer
        else:
            keys, issuer = StaticKeys(LocalIssuer(settings.data_dir).jwks()), LOCAL_ISSUER
        return cls(keys, issuer=issuer, audience=settings.staff_oidc_audience)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._keys.close()

    async def staff(self, token: str) -> Staff:
        """The staff member a token names; NotSignedIn (a reason people can read) when it does
        not hold, KeysUnavailable when it cannot be checked now."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise NotSignedIn("登录凭证格式不正确，请重新登录") from None
        kid = header.get("kid")
        key = await self._keys.key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            reason = next((r for kind, r in _REFUSALS if isinstance(error, kind)), None)
            raise NotSignedIn(reason or "登录凭证无效，请重新登录") from None
        return _staff_of(claims)


def _staff_of(claims: dict[str, Any]) -> Staff:
    """The staff member of verified claims; NotSignedIn when a Gridline claim is missing."""
    subject, name = claims.get("sub"), claims.get("name")
    role, node_id = claims.get("role"), claims.get("node_id")
    if not isinstance(subject, str) or not subject:
        raise NotSignedIn("登录凭证缺少人员编号（sub），请重新登录")
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise NotSignedIn(f"登录凭证中的角色（{role}）不是本系统的角色，请联系管理员")
    if not isinstance(node_id, str) or not 0 < len(node_id) <= NODE_ID_LENGTH:
        raise NotSignedIn("登录凭证缺少所属网格节点（node_id），请联系管理员")
    shown = name if isinstance(name, str) and name.strip() else subject
    return Staff(subject=subject, name=shown.strip(), role=Role(role), node_id=node_id)
