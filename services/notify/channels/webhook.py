"""A generic JSON webhook per recipient group."""

from __future__ import annotations

import httpx

from services.notify.channels.base import Message, PermanentFailure


class WebhookChannel:
    """POSTs the message as JSON to a URL template with `{group_id}`."""

    name = "webhook"

    def __init__(self, url_template: str, timeout: float) -> None:
        self._template = url_template
        self._client = httpx.AsyncClient(timeout=timeout)

    async def send(self, message: Message) -> None:
        """POST once; 4xx other than 408/429 is permanent, anything else may be retried."""
        url = self._template.replace("{group_id}", message.group_id)
        response = await self._client.post(
            url,
            json=message.as_json(),
            headers={"Idempotency-Key": message.notification_id},
        )
        if response.status_code < 300:
            return
        detail = f"{url} answered {response.status_code}: {response.text[:200]}"
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise PermanentFailure(detail)
        raise httpx.HTTPStatusError(detail, request=response.request, response=response)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
