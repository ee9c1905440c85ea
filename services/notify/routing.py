"""Which channels reach a recipient group, and when (its quiet hours), built once from the
settings and the groups file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gridline.personal import Sealer
from gridline.settings import Settings
from services.notify.channels.base import Channel, Message, Outgoing, Rendered
from services.notify.channels.inbox import InboxChannel
from services.notify.channels.robots import DingTalkChannel, FeishuChannel, WeComChannel
from services.notify.channels.sms import AliyunSmsChannel, GatewaySmsChannel, TencentSmsChannel
from services.notify.channels.webhook import SignedWebhookChannel, WebhookChannel
from services.notify.groups import AliyunSms, GroupsConfig, TencentSms, load_groups
from services.notify.quiet_hours import NO_QUIET_HOURS, QuietHours

ROBOT_KINDS = ("wecom", "dingtalk", "feishu", "signed_webhook")


@dataclass
class Router:
    """The channels of the process, the groups file that picks among them, and the quiet hours
    in which notices that may wait are held (none by default)."""

    config: GroupsConfig
    common: list[Channel] = field(default_factory=list)
    robots: dict[str, Channel] = field(default_factory=dict)
    sms: Channel | None = None
    quiet: QuietHours = NO_QUIET_HOURS

    def targets(
        self, message: Message, rendered: Rendered, phone: str
    ) -> list[tuple[Channel, Outgoing]]:
        """Each channel this message goes through, with what it is handed.

        A channel-broken notice never goes through a robot: it must arrive another way.
        """
        group = self.config.group(message.group_id)
        plain = Outgoing(message=message, rendered=rendered)
        found: list[tuple[Channel, Outgoing]] = [(channel, plain) for channel in self.common]
        robot = group.robot
        if robot is not None and message.kind != "NOTIFICATION_KIND_CHANNEL_BROKEN":
            found.append(
                (self.robots[robot.kind], Outgoing(message=message, rendered=rendered, robot=robot))
            )
        phone = phone or group.sms_phone.get_secret_value()
        if group.sms and self.sms is not None and phone:
            found.append((self.sms, Outgoing(message=message, rendered=rendered, phone=phone)))
        return found

    def channel(self, name: str) -> Channel | None:
        """The channel of that name, if this process has it."""
        return next((c for c in self.all_channels() if c.name == name), None)

    def all_channels(self) -> list[Channel]:
        """Every channel, to close at the end."""
        return [*self.common, *self.robots.values(), *([self.sms] if self.sms else [])]

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every channel's connections."""
        for channel in self.all_channels():
            await channel.close()


def build_router(settings: Settings) -> Router:
    """The channels the settings and the groups file switch on, and the settings' quiet hours."""
    config = load_groups(settings.notify_groups_file, Sealer.from_settings(settings))
    timeout = settings.notify_timeout_seconds
    router = Router(config=config, quiet=QuietHours.from_settings(settings))
    if settings.notify_inbox_enabled:
        router.common.append(InboxChannel(settings.inbox_path))
    if settings.notify_webhook_url:
        router.common.append(WebhookChannel(settings.notify_webhook_url, timeout))
    kinds = {g.robot.kind for g in config.groups.values() if g.robot is not None}
    makers: dict[str, Callable[[], Channel]] = {
        "wecom": lambda: WeComChannel(settings.notify_wecom_base_url, timeout),
        "dingtalk": lambda: DingTalkChannel(settings.notify_dingtalk_base_url, timeout),
        "feishu": lambda: FeishuChannel(settings.notify_feishu_base_url, timeout),
        "signed_webhook": lambda: SignedWebhookChannel(timeout),
    }
    router.robots = {kind: makers[kind]() for kind in ROBOT_KINDS if kind in kinds}
    account = config.sms
    if isinstance(account, AliyunSms):
        router.sms = AliyunSmsChannel(account, settings.notify_aliyun_sms_base_url, timeout)
    elif isinstance(account, TencentSms):
        router.sms = TencentSmsChannel(account, settings.notify_tencent_sms_base_url, timeout)
    elif account is not None:
        router.sms = GatewaySmsChannel(account, timeout)
    return router
