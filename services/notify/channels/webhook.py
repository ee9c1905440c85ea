"""A generic JSON webhook per recipient group, and a signed webhook per group."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from services.notify.channels.base import Outgoing, PermanentFailure
from services.notify.channels.http import HttpChannel, call_json


class WebhookChannel(HttpChannel):
    """POSTs the message as JSON to a URL template with `{group_id}`."""

    name = "webhook"
    idempotent = True

    def __init__(self, url_template: str, timeout: float) -> None:
        self._template = url_template
        super().__init__(timeout)

    async def send(self, outgoing: Outgoing) -> None:
        """POST once; 4xx other than 408/429 is permanent, anything else may be retried."""
        message = outgoing.message
        url = self._template.replace("{group_id}", message.group_id)
        status, _ = await call_json(
            self._client,
            self.name,
            "POST",
            url,
            json=message.as_json(),
            headers={"Idempotency-Key": message.notification_id},
        )
        if status >= 300:
            raise PermanentFailure(f"{self.name}: HTTP {status}")


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` hex HMAC-SHA256 of "timestamp." followed by the exact body."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class SignedWebhookChannel(HttpChannel):
    """A group's own webhook (its URL is the robot key) signed with its secret."""

    name = "signed_webhook"
    idempotent = True

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout)

    async def send(self, outgoing: Outgoing) -> None:
        """POST the message and its markdown with X-Gridline-Timestamp/-Signature headers."""
        robot = outgoing.robot
        if robot is None or robot.kind != "signed_webhook":
            raise PermanentFailure(f"{self.name}: group has no signed webhook")
        body = json.dumps(
            {**outgoing.message.as_json(), "markdown": outgoing.rendered.markdown},
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        status, _ = await call_json(
            self._client,
            self.name,
            "POST",
            robot.key.get_secret_value(),
            content=body,
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": outgoing.message.notification_id,
                "X-Gridline-Timestamp": timestamp,
                "X-Gridline-Signature": webhook_signature(
                    robot.secret.get_secret_value(), timestamp, body
                ),
            },
        )
        if status >= 300:
            raise PermanentFailure(f"{self.name}: HTTP {status}")
