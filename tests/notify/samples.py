"""Sample messages and configuration the notify tests share."""

from __future__ import annotations

from pydantic import SecretStr

from services.notify.channels.base import Message, Outgoing
from services.notify.groups import AliyunSms, GatewaySms, Robot, TencentSms
from services.notify.templates import render
from tests.notify import vendors as v

CADRE_PHONE = "13912345678"
RESIDENT_ID = "620102199001011234"
RESIDENT_PHONE = "13800001111"


def message(number: int = 1, *, title: str = "", text: str = "", kind: str = "") -> Message:
    """A task notice whose text carries personal data an upstream slip could leave in clear."""
    return Message(
        notification_id=f"n-{number}",
        kind=kind or "NOTIFICATION_KIND_TASK_ASSIGNED",
        level=1,
        group_id="g-cadre-1",
        group_name="三合小区23号楼 **群** @all",
        title=title or f"返兰人员核实 #{number}",
        text=text
        or f"张* 身份证{RESIDENT_ID} 电话{RESIDENT_PHONE} 到达 [点我](http://evil) <@all>",
        link=f"http://127.0.0.1:8003/tasks/t-{number}",
        task_id=f"t-{number}",
        report_id=f"r-{number}",
        report_accepted_at="2026-01-20T08:00:00+00:00",
    )


def robot(kind: str, *, mentions: tuple[str, ...] = (), url: str = "") -> Robot:
    """A robot configured as the loopback vendor expects."""
    keys = {
        "wecom": (v.WECOM_KEY, ""),
        "dingtalk": (v.DINGTALK_TOKEN, v.DINGTALK_SECRET),
        "feishu": (v.FEISHU_TOKEN, v.FEISHU_SECRET),
        "signed_webhook": (url, v.SIGNED_SECRET),
    }
    key, secret = keys[kind]
    return Robot(
        kind=kind,
        key=SecretStr(key),
        secret=SecretStr(secret),
        mention_user_ids=mentions,
    )


def outgoing(kind: str, *, number: int = 1, url: str = "", **robot_args: object) -> Outgoing:
    """An outgoing message for a robot of `kind`."""
    m = message(number)
    return Outgoing(message=m, rendered=render(m), robot=robot(kind, url=url, **robot_args))  # type: ignore[arg-type]


def sms_outgoing(number: int = 1) -> Outgoing:
    """An outgoing SMS to the cadre."""
    m = message(number)
    return Outgoing(message=m, rendered=render(m), phone=CADRE_PHONE)


ALIYUN = AliyunSms(
    provider="aliyun",
    access_key_id=SecretStr(v.ALIYUN_KEY_ID),
    access_key_secret=SecretStr(v.ALIYUN_KEY_SECRET),
    sign_name=v.ALIYUN_SIGN,
    template_code=v.ALIYUN_TEMPLATE,
)
TENCENT = TencentSms(
    provider="tencent",
    secret_id=SecretStr(v.TENCENT_ID),
    secret_key=SecretStr(v.TENCENT_KEY),
    sdk_app_id=v.TENCENT_APP,
    sign_name="网格通",
    template_id=v.TENCENT_TEMPLATE,
)


def gateway(url: str) -> GatewaySms:
    """The generic gateway at the loopback server."""
    return GatewaySms(
        provider="gateway", url=f"{url}/gateway/send", token=SecretStr(v.GATEWAY_TOKEN)
    )
