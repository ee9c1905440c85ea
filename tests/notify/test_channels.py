"""Each channel against a loopback server that checks requests as the vendor does."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from pydantic import SecretStr

from services.notify.channels.base import Channel, Outgoing, PermanentFailure, TransientFailure
from services.notify.channels.robots import DingTalkChannel, FeishuChannel, WeComChannel
from services.notify.channels.sms import AliyunSmsChannel, GatewaySmsChannel, TencentSmsChannel
from services.notify.channels.webhook import SignedWebhookChannel
from services.notify.templates import render
from tests.notify import samples
from tests.notify.vendors import Vendors


def _long(kind: str) -> Outgoing:
    m = samples.message(text="很长的说明" * 3000)
    return Outgoing(message=m, rendered=render(m), robot=samples.robot(kind))


def _with_key(out: Outgoing, key: str = "", secret: str = "") -> Outgoing:
    assert out.robot is not None
    robot = out.robot.model_copy(
        update={
            **({"key": SecretStr(key)} if key else {}),
            **({"secret": SecretStr(secret)} if secret else {}),
        }
    )
    return replace(out, robot=robot)


async def test_wecom_markdown_and_text_with_mentions(vendors: Vendors) -> None:
    channel = WeComChannel(f"{vendors.url}/wecom", 5)
    await channel.send(samples.outgoing("wecom"))
    await channel.send(samples.outgoing("wecom", mentions=("zhangsan",)))
    await channel.send(_long("wecom"))
    await channel.close()
    markdown, text, long = vendors.of("wecom")
    assert all(r.ok for r in (markdown, text, long)), [r.answer for r in vendors.received]
    assert markdown.query == {"key": "wecom-key-1"}
    assert json.loads(markdown.raw)["msgtype"] == "markdown"
    sent_text = json.loads(text.raw)["text"]
    assert sent_text["mentioned_list"] == ["zhangsan"]
    assert "mentioned_mobile_list" not in sent_text
    assert len(json.loads(long.raw)["markdown"]["content"].encode()) <= 4096


async def test_wecom_codes(vendors: Vendors) -> None:
    channel = WeComChannel(f"{vendors.url}/wecom", 5)
    with pytest.raises(PermanentFailure, match="93000"):
        await channel.send(_with_key(samples.outgoing("wecom"), key="wrong"))
    with (
        vendors.failing("wecom", 200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
        pytest.raises(TransientFailure, match="45009"),
    ):
        await channel.send(samples.outgoing("wecom"))
    with vendors.failing("wecom", 502, {}), pytest.raises(TransientFailure, match="502"):
        await channel.send(samples.outgoing("wecom"))
    await channel.close()


async def test_dingtalk_signed_markdown(vendors: Vendors) -> None:
    channel = DingTalkChannel(f"{vendors.url}/dingtalk", 5)
    await channel.send(samples.outgoing("dingtalk", mentions=("user01",)))
    await channel.send(_long("dingtalk"))
    await channel.close()
    first, long = vendors.of("dingtalk")
    assert first.ok and long.ok, [r.answer for r in vendors.received]
    body = json.loads(first.raw)
    assert body["msgtype"] == "markdown"
    assert body["at"] == {"atUserIds": ["user01"], "isAtAll": False}
    assert "@user01" in body["markdown"]["text"]
    assert set(first.query) == {"access_token", "timestamp", "sign"}


async def test_dingtalk_codes(vendors: Vendors) -> None:
    channel = DingTalkChannel(f"{vendors.url}/dingtalk", 5)
    with pytest.raises(PermanentFailure, match="310000"):
        await channel.send(_with_key(samples.outgoing("dingtalk"), secret="SECwrong"))
    with pytest.raises(PermanentFailure, match="300001"):
        await channel.send(_with_key(samples.outgoing("dingtalk"), key="nope"))
    with (
        vendors.failing("dingtalk", 200, {"errcode": 130101, "errmsg": "send too fast"}),
        pytest.raises(TransientFailure, match="130101"),
    ):
        await channel.send(samples.outgoing("dingtalk"))
    await channel.close()


async def test_feishu_signed_card(vendors: Vendors) -> None:
    channel = FeishuChannel(f"{vendors.url}/feishu", 5)
    await channel.send(samples.outgoing("feishu", mentions=("ou_abc",)))
    await channel.send(_long("feishu"))
    await channel.close()
    first, long = vendors.of("feishu")
    assert first.ok and long.ok, [r.answer for r in vendors.received]
    body = json.loads(first.raw)
    assert body["msg_type"] == "interactive"
    assert "<at id=ou_abc></at>" in body["card"]["elements"][0]["text"]["content"]
    assert len(long.raw) <= 20 * 1024


async def test_feishu_codes(vendors: Vendors) -> None:
    channel = FeishuChannel(f"{vendors.url}/feishu", 5)
    with pytest.raises(PermanentFailure, match="19021"):
        await channel.send(_with_key(samples.outgoing("feishu"), secret="wrong"))
    with (
        vendors.failing("feishu", 200, {"code": 9499, "msg": "too many request"}),
        pytest.raises(TransientFailure, match="9499"),
    ):
        await channel.send(samples.outgoing("feishu"))
    await channel.close()


async def test_signed_webhook(vendors: Vendors) -> None:
    channel = SignedWebhookChannel(5)
    url = f"{vendors.url}/signed/hook"
    await channel.send(samples.outgoing("signed_webhook", url=url))
    with pytest.raises(PermanentFailure, match="401"):
        await channel.send(_with_key(samples.outgoing("signed_webhook", url=url), secret="bad"))
    await channel.close()
    good, bad = vendors.of("signed")
    assert good.ok and not bad.ok
    assert good.headers["idempotency-key"] == "n-1"


async def test_aliyun_sms(vendors: Vendors) -> None:
    channel = AliyunSmsChannel(samples.ALIYUN, f"{vendors.url}/aliyun", 5)
    await channel.send(samples.sms_outgoing())
    [request] = vendors.of("aliyun")
    assert request.ok, request.answer
    with (
        vendors.failing(
            "aliyun", 200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"}
        ),
        pytest.raises(TransientFailure, match="BUSINESS_LIMIT_CONTROL"),
    ):
        await channel.send(samples.sms_outgoing())
    wrong = samples.ALIYUN.model_copy(update={"access_key_secret": SecretStr("wrong")})
    with pytest.raises(PermanentFailure, match="SignatureDoesNotMatch"):
        await AliyunSmsChannel(wrong, f"{vendors.url}/aliyun", 5).send(samples.sms_outgoing())
    await channel.close()


async def test_tencent_sms(vendors: Vendors) -> None:
    channel = TencentSmsChannel(samples.TENCENT, f"{vendors.url}/tencent", 5)
    await channel.send(samples.sms_outgoing())
    [request] = vendors.of("tencent")
    assert request.ok, request.answer
    assert json.loads(request.raw)["PhoneNumberSet"] == [f"+86{samples.CADRE_PHONE}"]
    limited = {
        "Response": {
            "SendStatusSet": [{"Code": "LimitExceeded.PhoneNumberThirtySecondLimit"}],
            "RequestId": "r",
        }
    }
    with (
        vendors.failing("tencent", 200, limited),
        pytest.raises(TransientFailure, match="ThirtySecondLimit"),
    ):
        await channel.send(samples.sms_outgoing())
    wrong = samples.TENCENT.model_copy(update={"secret_key": SecretStr("wrong")})
    with pytest.raises(PermanentFailure, match="SignatureFailure"):
        await TencentSmsChannel(wrong, f"{vendors.url}/tencent", 5).send(samples.sms_outgoing())
    await channel.close()


async def test_gateway_sms(vendors: Vendors) -> None:
    channel = GatewaySmsChannel(samples.gateway(vendors.url), 5)
    await channel.send(samples.sms_outgoing())
    [request] = vendors.of("gateway")
    assert request.ok, request.answer
    assert len(json.loads(request.raw)["text"]) <= 70
    await channel.close()


async def test_text_form_on_each_robot(vendors: Vendors) -> None:
    kinds: dict[str, Channel] = {
        "wecom": WeComChannel(f"{vendors.url}/wecom", 5),
        "dingtalk": DingTalkChannel(f"{vendors.url}/dingtalk", 5),
        "feishu": FeishuChannel(f"{vendors.url}/feishu", 5),
    }
    for kind, channel in kinds.items():
        out = samples.outgoing(kind, mentions=("u9",))
        assert out.robot is not None
        await channel.send(replace(out, robot=out.robot.model_copy(update={"format": "text"})))
        await channel.close()
    wecom, dingtalk, feishu = (vendors.of(k)[0] for k in kinds)
    assert all(r.ok for r in (wecom, dingtalk, feishu)), [r.answer for r in vendors.received]
    assert json.loads(wecom.raw)["msgtype"] == "text"
    ding = json.loads(dingtalk.raw)
    assert ding["msgtype"] == "text" and "@u9" in ding["text"]["content"]
    lark = json.loads(feishu.raw)
    assert lark["msg_type"] == "text" and '<at user_id="u9"></at>' in lark["content"]["text"]
