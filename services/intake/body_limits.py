"""Body size limits by path: a batch may be larger than a single report."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gridline.http import BodySizeLimitMiddleware

BATCH_PATH = "/v1/reports:batch"


class PathBodyLimits:
    """Applies the batch limit to the batch path and the general limit everywhere else."""

    def __init__(self, app: ASGIApp, max_bytes: int, batch_max_bytes: int) -> None:
        self._default = BodySizeLimitMiddleware(app, max_bytes=max_bytes)
        self._batch = BodySizeLimitMiddleware(app, max_bytes=batch_max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limited = self._batch if scope.get("path") == BATCH_PATH else self._default
        await limited(scope, receive, send)
