"""A group's robot (and SMS) tried now with a test message, and secrets sealed for the groups
file: what an operator checks from outside the service (`gridline notify test|seal`). A test
message goes straight to the vendors and never into the delivery log."""

from __future__ import annotations

import uuid

from gridline.personal import Sealer
from gridline.settings import Settings
from services.notify.channels.base import Message, Outgoing, PermanentFailure, TransientFailure
from services.notify.groups import GroupsFileError, seal_secret
from services.notify.routing import build_router
from services.notify.templates import render

__all__ = ["GroupsFileError", "NoTestTarget", "seal", "send_test"]


class NoTestTarget(LookupError):
    """The group is not in the groups file, or has no robot (and no phone for SMS) to try."""


def _test_message(group_id: str) -> Message:
    return Message(
        notification_id=f"test-{uuid.uuid4().hex}",
        kind="NOTIFICATION_KIND_TEST",
        level=0,
        group_id=group_id,
        group_name=group_id,
        title="机器人配置测试",
        text="这是一条测试消息。",
        link="",
        task_id="",
        report_id="",
        report_accepted_at="",
    )


async def send_test(settings: Settings, group_id: str, phone: str) -> list[tuple[str, str]]:
    """Send a test message through the group's robot (and SMS to `phone`, if given).

    Returns (channel, error) per channel tried, the error "" when the vendor took it. Raises
    NoTestTarget when there is nothing to try, GroupsFileError when the groups file is bad.
    """
    router = build_router(settings)
    try:
        group = router.config.groups.get(group_id)
        if group is None:
            raise NoTestTarget(f"group {group_id!r} is not in the groups file")
        message = _test_message(group_id)
        rendered = render(message)
        targets = []
        if group.robot is not None:
            targets.append(
                (router.robots[group.robot.kind], Outgoing(message, rendered, robot=group.robot))
            )
        if phone and router.sms is not None:
            targets.append((router.sms, Outgoing(message, rendered, phone=phone)))
        if not targets:
            raise NoTestTarget(f"group {group_id!r} has no robot (and no --phone for SMS)")
        results = []
        for channel, outgoing in targets:
            try:
                await channel.send(outgoing)
                results.append((channel.name, ""))
            except (PermanentFailure, TransientFailure) as exc:
                results.append((channel.name, str(exc)))
        return results
    finally:
        await router.close()


def seal(settings: Settings, value: str) -> str:
    """VALUE sealed with the PII key, as the groups file stores secrets."""
    return seal_secret(Sealer.from_settings(settings), value)
