"""Everything the loopback vendors received is scanned for clear ID numbers and full mobiles."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from services.notify.channels.base import Channel, Outgoing
from services.notify.channels.robots import DingTalkChannel, FeishuChannel, WeComChannel
from services.notify.channels.sms import AliyunSmsChannel, GatewaySmsChannel, TencentSmsChannel
from services.notify.channels.webhook import SignedWebhookChannel
from services.notify.templates import render
from tests.notify import samples
from tests.notify.vendors import Received, Vendors

ID_NUMBER = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")
MOBILE = re.compile(r"(?<![0-9])1[3-9]\d{9}(?![0-9])")

# Where an SMS vendor must be told the destination number; nowhere else may a number appear.
_DESTINATIONS = {"aliyun": "PhoneNumbers", "tencent": "PhoneNumberSet", "gateway": "phone"}

LEAKY_TEXTS = [
    f"身份证{samples.RESIDENT_ID}，电话{samples.RESIDENT_PHONE}",
    f"联系 +86 {samples.RESIDENT_PHONE} 或 86-{samples.RESIDENT_PHONE}",
    f"ID:{samples.RESIDENT_ID.lower()}x",
]


def _scannable(request: Received) -> str:
    """The request as text, the SMS destination field removed."""
    text = request.raw.decode()
    if request.vendor == "aliyun":
        form = {k: v[0] for k, v in parse_qs(text).items()}
        form.pop(_DESTINATIONS["aliyun"])
        return json.dumps(form, ensure_ascii=False) + json.dumps(request.query)
    if request.vendor in _DESTINATIONS:
        body = json.loads(text)
        body.pop(_DESTINATIONS[request.vendor])
        return json.dumps(body, ensure_ascii=False)
    return text + json.dumps(request.query)


async def test_no_vendor_receives_a_clear_id_number_or_mobile(vendors: Vendors) -> None:
    channels: dict[str, Channel] = {
        "wecom": WeComChannel(f"{vendors.url}/wecom", 5),
        "dingtalk": DingTalkChannel(f"{vendors.url}/dingtalk", 5),
        "feishu": FeishuChannel(f"{vendors.url}/feishu", 5),
        "signed_webhook": SignedWebhookChannel(5),
    }
    sms: list[Channel] = [
        AliyunSmsChannel(samples.ALIYUN, f"{vendors.url}/aliyun", 5),
        TencentSmsChannel(samples.TENCENT, f"{vendors.url}/tencent", 5),
        GatewaySmsChannel(samples.gateway(vendors.url), 5),
    ]
    for number, leaky in enumerate(LEAKY_TEXTS):
        message = samples.message(number, title=leaky[:30], text=leaky)
        for kind, channel in channels.items():
            robot = samples.robot(kind, url=f"{vendors.url}/signed/hook", mentions=("u1",))
            await channel.send(Outgoing(message=message, rendered=render(message), robot=robot))
        for channel in sms:
            await channel.send(
                Outgoing(message=message, rendered=render(message), phone=samples.CADRE_PHONE)
            )
    for channel in [*channels.values(), *sms]:
        await channel.close()
    assert len(vendors.received) == len(LEAKY_TEXTS) * 7
    assert all(r.ok for r in vendors.received), [r.answer for r in vendors.received if not r.ok]
    for request in vendors.received:
        text = _scannable(request)
        assert not ID_NUMBER.search(text), (request.vendor, ID_NUMBER.search(text))
        assert not MOBILE.search(text), (request.vendor, MOBILE.search(text))
    # The scan can fail: the destination number itself is a match where it is allowed.
    aliyun = vendors.of("aliyun")[0]
    assert MOBILE.search(aliyun.raw.decode())
