"""Who is posting: signed integrator requests (401 with a reason), their scopes (403), and a
limit on unknown keys per address (429).

Every refusal is a problem (`gridline.problems`) whose rule says why: `signature.*` (401),
`source.not_allowed` (403), `rate_limit.unknown_keys` (429).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request, status

from gridline.problems import ProblemError
from services.intake.integrators import Caller
from services.intake.key_cache import CachedRegistry
from services.intake.ratelimit import count_unknown_key, unknown_keys_refused
from services.intake.signing import (
    KEY_HEADER,
    MAX_CLOCK_SKEW_SECONDS,
    NONCE_HEADER,
    SIGNATURE_HEADERS,
    SignatureRefused,
    check_signature,
)

# A nonce is remembered a little longer than a timestamp stays acceptable.
NONCE_TTL_SECONDS = 2 * MAX_CLOCK_SKEW_SECONDS + 60
# What a key id intake issued can look like (it issues `key_` and hex), within its column's 64.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _refuse(rule: str, reason: str) -> ProblemError:
    return ProblemError(
        status.HTTP_401_UNAUTHORIZED, rule, reason, headers={"WWW-Authenticate": "Gridline-HMAC"}
    )


@dataclass(frozen=True)
class Signed:
    """A request whose signature holds: who signed it, and its nonce, not yet spent."""

    caller: Caller
    nonce_key: str


def nonce_refused() -> ProblemError:
    """The 401 for a nonce that was spent before."""
    return _refuse(
        "signature.nonce_reused", f"{NONCE_HEADER} 已用过：每个请求（包括重试）须用新的随机数"
    )


async def authenticate(request: Request) -> Caller | None:
    """The integrator who signed the request; None for an unsigned one where that is allowed.

    A request carrying any signature header is checked in full, whatever the setting, and its
    nonce is spent here.
    """
    signed = await verify_signature(request)
    if signed is None:
        return None
    if not await request.app.state.redis.set(signed.nonce_key, "1", nx=True, ex=NONCE_TTL_SECONDS):
        raise nonce_refused()
    return signed.caller


async def verify_signature(request: Request) -> Signed | None:
    """Like `authenticate`, but leaves the nonce for the caller to spend (see `Signed`).

    Report posts spend it together with their rate limit, in one round trip to Redis. An
    address that sent `GRIDLINE_INTAKE_UNKNOWN_KEYS_PER_MINUTE` unknown or revoked keys this
    minute is refused (429) before its next key is looked up in the database.
    """
    state = request.app.state
    headers = {name: request.headers[name] for name in SIGNATURE_HEADERS if name in request.headers}
    if not headers:
        if state.require_signatures:
            raise _refuse(
                "signature.missing", f"请求未签名：须带 {'、'.join(SIGNATURE_HEADERS)} 四个请求头"
            )
        return None
    missing = [name for name in SIGNATURE_HEADERS if name not in headers]
    if missing:
        raise _refuse("signature.headers_missing", f"缺少签名请求头：{'、'.join(missing)}")
    registry: CachedRegistry = state.integrators
    key_id = headers[KEY_HEADER]
    address = request.client.host if request.client else "unknown"
    if not registry.remembers(key_id):
        refused = await unknown_keys_refused(
            state.redis, address, state.settings.intake_unknown_keys_per_minute
        )
        if refused is not None:
            raise refused
    # A key id of another shape was never issued: no query for it.
    found = await registry.caller(key_id) if _KEY_ID.fullmatch(key_id) else None
    if found is None:
        await count_unknown_key(state.redis, address)
        raise _refuse("signature.key_unknown", f"{KEY_HEADER} 所给的密钥不存在或已吊销")
    caller, secret = found
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        check_signature(
            secret, request.method, path, headers, await request.body(), now=time.time()
        )
    except SignatureRefused as refused:
        raise _refuse(refused.rule, str(refused)) from None
    return Signed(caller, f"intake:nonce:{caller.key_id}:{headers[NONCE_HEADER]}")


def require_scope(caller: Caller | None, sources: Iterable[str]) -> None:
    """403 unless the caller may post every one of these sources (unsigned callers may)."""
    if caller is None:
        return
    missing = sorted(set(sources) - caller.scopes)
    if missing:
        raise ProblemError(
            status.HTTP_403_FORBIDDEN,
            "source.not_allowed",
            f"密钥 {caller.key_id} 无权推送数据来源 {'、'.join(missing)}；"
            "如需开通请联系县联防联控办",
        )
