"""Chat-group robots as each vendor documents them: WeCom, DingTalk and Feishu custom robots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar
from urllib.parse import quote

from services.notify.channels.base import Outgoing, PermanentFailure
from services.notify.channels.http import HttpChannel, by_code, call_json
from services.notify.groups import Robot
from services.notify.templates import fit_utf8


def _robot(outgoing: Outgoing, kind: str) -> Robot:
    robot = outgoing.robot
    if robot is None or robot.kind != kind:
        raise PermanentFailure(f"{kind}: group {outgoing.message.group_id} has no {kind} robot")
    return robot


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's `sign`: base64 HMAC-SHA256 keyed by the secret over "timestamp\\nsecret"."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's `sign`: base64 HMAC-SHA256 keyed by "timestamp\\nsecret" over nothing."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _RobotChannel(HttpChannel):
    """What the robots share: a vendor base URL, no idempotency key, and code 0 for success."""

    name: str
    idempotent = False
    TRANSIENT_CODES: ClassVar[set[object]] = set()

    def __init__(self, base_url: str, timeout: float) -> None:
        self._base = base_url.rstrip("/")
        super().__init__(timeout)

    def _raise_unless_ok(self, code: object, message: object) -> None:
        if code != 0:
            raise by_code(self.name, code, message, self.TRANSIENT_CODES)


class WeComChannel(_RobotChannel):
    """WeCom group robot: markdown, or text with `mentioned_list` when the group names people."""

    name = "wecom"
    TEXT_LIMIT_BYTES = 2048
    MARKDOWN_LIMIT_BYTES = 4096
    # -1 system busy, 45009 API frequency limit; the rest (93000 bad key, 40008, 44004...) stay.
    TRANSIENT_CODES: ClassVar[set[object]] = {-1, 45009}

    def body(self, outgoing: Outgoing) -> dict[str, Any]:
        """The JSON WeCom takes for this message."""
        robot = _robot(outgoing, "wecom")
        # Only the text form carries `mentioned_list`.
        if robot.mention_user_ids or robot.format == "text":
            return {
                "msgtype": "text",
                "text": {
                    "content": fit_utf8(outgoing.rendered.text, self.TEXT_LIMIT_BYTES),
                    "mentioned_list": list(robot.mention_user_ids),
                },
            }
        return {
            "msgtype": "markdown",
            "markdown": {
                "content": fit_utf8(outgoing.rendered.markdown, self.MARKDOWN_LIMIT_BYTES)
            },
        }

    async def send(self, outgoing: Outgoing) -> None:
        """POST to /cgi-bin/webhook/send?key=KEY; errcode 0 is success."""
        robot = _robot(outgoing, "wecom")
        _, answer = await call_json(
            self._client,
            self.name,
            "POST",
            f"{self._base}/cgi-bin/webhook/send",
            params={"key": robot.key.get_secret_value()},
            json=self.body(outgoing),
        )
        self._raise_unless_ok(answer.get("errcode"), answer.get("errmsg"))


class DingTalkChannel(_RobotChannel):
    """DingTalk custom robot: markdown or text with `at.atUserIds`, signed by timestamp + sign."""

    name = "dingtalk"
    TEXT_LIMIT_BYTES = 20000
    # -1 system busy, 130101 sending too fast; 310000 (sign/keyword/ip), 300001 (token) stay.
    TRANSIENT_CODES: ClassVar[set[object]] = {-1, 130101}

    def body(self, outgoing: Outgoing) -> dict[str, Any]:
        """The JSON DingTalk takes (markdown or text); a mention shows only when `@userid` is
        also in the text."""
        robot = _robot(outgoing, "dingtalk")
        mentions = " ".join(f"@{user}" for user in robot.mention_user_ids)
        at = {"atUserIds": list(robot.mention_user_ids), "isAtAll": False}
        if robot.format == "text":
            text = outgoing.rendered.text + (f"\n{mentions}" if mentions else "")
            return {
                "msgtype": "text",
                "text": {"content": fit_utf8(text, self.TEXT_LIMIT_BYTES)},
                "at": at,
            }
        text = outgoing.rendered.markdown + (f"\n\n{mentions}" if mentions else "")
        return {
            "msgtype": "markdown",
            "markdown": {
                "title": outgoing.rendered.title,
                "text": fit_utf8(text, self.TEXT_LIMIT_BYTES),
            },
            "at": at,
        }

    async def send(self, outgoing: Outgoing) -> None:
        """POST to /robot/send?access_token=…[&timestamp=…&sign=…]; errcode 0 is success."""
        robot = _robot(outgoing, "dingtalk")
        params: dict[str, str] = {"access_token": robot.key.get_secret_value()}
        secret = robot.secret.get_secret_value()
        if secret:
            timestamp = int(time.time() * 1000)
            params["timestamp"] = str(timestamp)
            params["sign"] = dingtalk_sign(secret, timestamp)
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        _, answer = await call_json(
            self._client,
            self.name,
            "POST",
            f"{self._base}/robot/send?{query}",
            json=self.body(outgoing),
        )
        self._raise_unless_ok(answer.get("errcode"), answer.get("errmsg"))


class FeishuChannel(_RobotChannel):
    """Feishu custom bot: an interactive card or text, timestamp + sign in the body."""

    name = "feishu"
    # The whole body may hold 20 KB; the card text keeps room for the rest of it.
    CARD_TEXT_LIMIT_BYTES = 16 * 1024
    # 9499 too many requests, 11232 frequency limited; 19021 (sign), 19024 (keyword) stay.
    TRANSIENT_CODES: ClassVar[set[object]] = {9499, 11232}

    def body(self, outgoing: Outgoing) -> dict[str, Any]:
        """The card (or text) Feishu takes; mentions as `<at …></at>` tags."""
        robot = _robot(outgoing, "feishu")
        if robot.format == "text":
            tags = "".join(f'<at user_id="{user}"></at>' for user in robot.mention_user_ids)
            text = outgoing.rendered.text + (f"\n{tags}" if tags else "")
            return {
                "msg_type": "text",
                "content": {"text": fit_utf8(text, self.CARD_TEXT_LIMIT_BYTES)},
            }
        mentions = "".join(f"<at id={user}></at>" for user in robot.mention_user_ids)
        content = outgoing.rendered.markdown.split("\n", 1)[-1].strip()
        content = fit_utf8(
            content + (f"\n{mentions}" if mentions else ""), self.CARD_TEXT_LIMIT_BYTES
        )
        return {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {
                    "title": {"tag": "plain_text", "content": outgoing.rendered.title},
                    "template": "red"
                    if outgoing.message.kind == "NOTIFICATION_KIND_ESCALATION"
                    else "blue",
                },
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
            },
        }

    async def send(self, outgoing: Outgoing) -> None:
        """POST to /open-apis/bot/v2/hook/TOKEN; code 0 is success."""
        robot = _robot(outgoing, "feishu")
        body = self.body(outgoing)
        secret = robot.secret.get_secret_value()
        if secret:
            timestamp = int(time.time())
            body = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **body}
        _, answer = await call_json(
            self._client,
            self.name,
            "POST",
            f"{self._base}/open-apis/bot/v2/hook/{quote(robot.key.get_secret_value(), safe='')}",
            json=body,
        )
        self._raise_unless_ok(answer.get("code", answer.get("StatusCode")), answer.get("msg"))
