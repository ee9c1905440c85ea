"""One HTTP call to a vendor, its transport failures sorted into transient and permanent."""

from __future__ import annotations

import time
from collections.abc import Container
from typing import Any

import httpx

from services.notify import metrics
from services.notify.channels.base import PermanentFailure, TransientFailure


async def call_json(
    client: httpx.AsyncClient, channel: str, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """The vendor's status and JSON answer, for the channel to read its own error codes.

    Network errors, 5xx, 408 and 429 are transient; another status without a JSON object is
    permanent. The URL is never put in an error: for robots it holds the key.
    """
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise TransientFailure(f"{channel}: {type(exc).__name__}") from exc
    finally:
        metrics.VENDOR_SECONDS.labels(channel).observe(time.perf_counter() - started)
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise TransientFailure(f"{channel}: HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        failure = PermanentFailure if response.status_code >= 400 else TransientFailure
        raise failure(f"{channel}: HTTP {response.status_code} without a JSON object")
    return response.status_code, answer


def by_code(channel: str, code: object, message: object, transient: Container[object]) -> Exception:
    """The failure for a vendor error code: transient when listed, else permanent."""
    detail = f"{channel}: error {code}: {str(message)[:200]}"
    return TransientFailure(detail) if code in transient else PermanentFailure(detail)


class HttpChannel:
    """What every HTTP channel shares: one connection pool, closed with the channel."""

    def __init__(self, timeout: float) -> None:
        self._client = httpx.AsyncClient(timeout=timeout)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
