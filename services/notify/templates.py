"""Templates per notification kind, in Chinese, rendered once for each channel style.

User-supplied text (titles and bodies carry names and addresses) is masked again here and made
inert: markdown and mention syntax differ between vendors and not all honour backslash escapes,
so the characters that could start markup or a mention are replaced by their full-width forms,
which read the same to people and mean nothing to a renderer.
"""

from __future__ import annotations

import re
from datetime import time

from gridline.privacy import scrub_text
from services.notify.channels.base import Message, Rendered

_INERT = str.maketrans(
    {
        "*": "＊",
        "_": "＿",
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "#": "＃",
        ">": "＞",
        "<": "＜",
        "`": "｀",
        "|": "｜",
        "~": "～",
        "@": "＠",
        "!": "！",
        "\\": "＼",
        "\r": " ",
        "\n": " ",
    }
)
# Runs of those characters: translating only them is several times quicker than `translate` over
# a whole Chinese text, which looks each character up.
_MARKUP = re.compile("[" + re.escape("".join(chr(code) for code in _INERT)) + "]+")


def _made_inert(text: str) -> str:
    return _MARKUP.sub(lambda run: run[0].translate(_INERT), text)


# One SMS segment holds 70 UCS-2 characters; the vendor adds the 【signature】 to it. The words of
# an SMS fit one segment; a task's link follows them, making a long SMS of a few segments.
SMS_SEGMENT_CHARS = 70
_SMS_SIGNATURE_ALLOWANCE = 8
SMS_PARAM_CHARS = 20

# The words of docs/glossary.md. Every kind that asks for action says what in its body, built
# where the notice is made; only the two notify makes itself carry a closing line here.
_KIND_LABELS = {
    "NOTIFICATION_KIND_TASK_ASSIGNED": "新任务",
    "NOTIFICATION_KIND_ESCALATION": "上报",
    "NOTIFICATION_KIND_CASE_ENRICHED": "再次报告",
    "NOTIFICATION_KIND_DAILY_SUMMARY": "零报告汇总",
    "NOTIFICATION_KIND_REMINDER": "提醒",
    "NOTIFICATION_KIND_RESIDENT_REMINDER": "温馨提醒",
    "NOTIFICATION_KIND_MEASURE_ENDING": "即将期满",
    "NOTIFICATION_KIND_REPORTED_UP": "情况报告",
    "NOTIFICATION_KIND_APPROVAL_REQUESTED": "待审批",
    "NOTIFICATION_KIND_CHANNEL_BROKEN": "发送故障",
    "NOTIFICATION_KIND_TEST": "测试消息",
}
_ACTIONS = {
    "NOTIFICATION_KIND_CHANNEL_BROKEN": "请检查该群机器人的配置（密钥、签名）。",
    "NOTIFICATION_KIND_TEST": "收到此消息说明本群机器人配置正确。",
}
# What the link opens, said before it in every form.
LINK_LABEL = "打开任务页办理"


def inert(text: str) -> str:
    """Masked user text that no markdown renderer or mention parser acts on."""
    return _made_inert(scrub_text(text))


def kind_label(kind: str) -> str:
    """The Chinese label of a notification kind."""
    return _KIND_LABELS.get(kind, "通知")


def fit_utf8(text: str, limit: int) -> str:
    """`text` cut on a character boundary so that its UTF-8 form fits `limit` bytes."""
    if len(text.encode()) <= limit:
        return text
    ellipsis = "…"
    budget = limit - len(ellipsis.encode())
    cut = text.encode()[:budget].decode(errors="ignore")
    return cut + ellipsis


def fit_chars(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sms_words(label: str, title: str, link: str) -> str:
    """The SMS's words, within one segment: the kind, the title (cut to fit), and, when the
    notice carries a link, the line that points to it."""
    tail = "，请点链接办理：" if link else "。"
    room = SMS_SEGMENT_CHARS - _SMS_SIGNATURE_ALLOWANCE - len(label) - 2 - len(tail)
    return f"【{label}】{fit_chars(title, room)}{tail}"


# Channels as an office names them.
CHANNEL_ZH = {
    "wecom": "企业微信群机器人",
    "dingtalk": "钉钉群机器人",
    "feishu": "飞书群机器人",
    "sms-aliyun": "阿里云短信",
    "sms-tencent": "腾讯云短信",
    "sms-gateway": "短信网关",
    "webhook": "接口推送",
    "signed_webhook": "接口推送",
    "inbox": "站内消息",
}


def channel_broken_text(group_name: str, channel: str) -> tuple[str, str]:
    """The title and body telling an office that a group's channel refused its configuration.

    The vendor's own error (often English) stays with operations: in the dead letter's
    `dlq-error` header and the log, not in the office's notice.
    """
    said = CHANNEL_ZH.get(channel, "通知通道")
    return (
        f"{group_name}的{said}无法发送",
        f"{group_name}的{said}拒绝了发送，多为密钥、签名或地址配置有误。"
        "该群的通知已改由其他通道送达，请尽快联系运维修复。",
    )


def render(message: Message) -> Rendered:
    """The notification as markdown for robots, plain text, and SMS text and parameters.

    An SMS about a task carries its link after the words (`sms_text`). The template vendors'
    parameters stay the kind and the title: their variables hold 35 characters at most, and a
    task's signed link is longer.
    """
    label = kind_label(message.kind)
    # Masked once; the markdown and text forms are also made inert, the SMS forms are not.
    masked_title = scrub_text(message.title)
    title = _made_inert(masked_title)
    body = inert(message.text)
    # A group known only by its id (a robot test names the group it was given) is not named.
    named = message.group_name and message.group_name != message.group_id
    group_md = f"> 接收群：{inert(message.group_name)}\n\n" if named else ""
    group_text = f"接收群：{inert(message.group_name)}\n" if named else ""
    action = _ACTIONS.get(message.kind, "")
    closing = f"\n\n{action}" if action else ""
    # Links are ours (escalation's pages): only ids inside, no user text.
    link_md = f"\n\n[{LINK_LABEL}]({message.link})" if message.link else ""
    link_text = f"\n{LINK_LABEL}：{message.link}" if message.link else ""
    markdown = f"### 【{label}】{title}\n\n{group_md}{body}{closing}{link_md}"
    text = f"【{label}】{title}\n{group_text}{body}{closing[1:]}{link_text}"
    return Rendered(
        title=f"【{label}】{fit_chars(title, 40)}",
        markdown=markdown,
        text=text,
        sms_text=sms_words(label, masked_title, message.link) + message.link,
        sms_params={"kind": label, "title": fit_chars(masked_title, SMS_PARAM_CHARS)},
    )


# The smallest robot limit is WeCom's 4096-byte markdown; a digest stays well inside it.
DIGEST_LIMIT_BYTES = 3600
_DIGEST_TITLE_CHARS = 30


def digest_line(number: int, kind: str, title: str, link: str) -> str:
    """One notification's line in a digest (markdown that reads as plain text too)."""
    shown = fit_chars(inert(title), _DIGEST_TITLE_CHARS)
    opening = f" [打开]({link})" if link else ""
    return f"{number}. 【{kind_label(kind)}】{shown}{opening}"


def render_digest(group_name: str, lines: list[str]) -> Rendered:
    """One message standing for several, each listed once by its line."""
    heading = f"【汇总】{inert(group_name)} {len(lines)} 条通知"
    body = "\n".join(lines)
    return Rendered(
        title=heading,
        markdown=f"### {heading}\n\n{body}\n\n发送过于频繁，已合并为一条。",
        text=f"{heading}\n{body}",
        sms_text=fit_chars(heading, SMS_SEGMENT_CHARS - _SMS_SIGNATURE_ALLOWANCE),
        sms_params={"kind": "汇总", "title": fit_chars(heading, SMS_PARAM_CHARS)},
    )


def _clock(at: time) -> str:
    """A time of day as a cadre writes it: 7:00, 22:00."""
    return f"{at.hour}:{at.minute:02d}"


def render_held_digest(group_name: str, lines: list[str], start: time, end: time) -> Rendered:
    """The morning digest of the notices held in a group's quiet hours (`start` to `end`)."""
    heading = f"【夜间汇总】{inert(group_name)} {len(lines)} 条通知"
    body = "\n".join(lines)
    overnight = "次日" if end < start else ""
    note = (
        f"以上为{_clock(start)}至{overnight}{_clock(end)}间的非紧急通知，"
        "现合并发送；高风险、发热等紧急事项均已即时通知。"
    )
    return Rendered(
        title=heading,
        markdown=f"### {heading}\n\n{body}\n\n{note}",
        text=f"{heading}\n{body}\n{note}",
        sms_text=fit_chars(heading, SMS_SEGMENT_CHARS - _SMS_SIGNATURE_ALLOWANCE),
        sms_params={"kind": "夜间汇总", "title": fit_chars(heading, SMS_PARAM_CHARS)},
    )
