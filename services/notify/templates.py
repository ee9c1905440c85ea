"""Templates per notification kind, in Chinese, rendered once for each channel style.

User-supplied text (titles and bodies carry names and addresses) is masked again here and made
inert: markdown and mention syntax differ between vendors and not all honour backslash escapes,
so the characters that could start markup or a mention are replaced by their full-width forms,
which read the same to people and mean nothing to a renderer.
"""

from __future__ import annotations

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

# One SMS segment holds 70 UCS-2 characters; the vendor adds the 【signature】 to it.
SMS_SEGMENT_CHARS = 70
_SMS_SIGNATURE_ALLOWANCE = 8
SMS_PARAM_CHARS = 20

_KIND_LABELS = {
    "NOTIFICATION_KIND_TASK_ASSIGNED": "新任务",
    "NOTIFICATION_KIND_ESCALATION": "升级提醒",
    "NOTIFICATION_KIND_CASE_ENRICHED": "同人补报",
    "NOTIFICATION_KIND_CHANNEL_BROKEN": "通道故障",
    "NOTIFICATION_KIND_TEST": "测试消息",
}
_ACTIONS = {
    "NOTIFICATION_KIND_TASK_ASSIGNED": "请尽快核实并在任务页确认接收。",
    "NOTIFICATION_KIND_ESCALATION": "该事项未按时处置，已上报至本级，请立即督办。",
    "NOTIFICATION_KIND_CHANNEL_BROKEN": "请检查该群机器人的配置（密钥、签名）。",
    "NOTIFICATION_KIND_TEST": "收到此消息说明本群机器人配置正确。",
}


def inert(text: str) -> str:
    """Masked user text that no markdown renderer or mention parser acts on."""
    return scrub_text(text).translate(_INERT)


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


def render(message: Message) -> Rendered:
    """The notification as markdown for robots, plain text, and SMS text and parameters."""
    label = kind_label(message.kind)
    # Masked once; the markdown and text forms are also made inert, the SMS forms are not.
    masked_title = scrub_text(message.title)
    title = masked_title.translate(_INERT)
    body = inert(message.text)
    group = inert(message.group_name)
    action = _ACTIONS.get(message.kind, "")
    # Links are ours (escalation's pages): only ids inside, no user text.
    link_md = f"\n\n[打开任务]({message.link})" if message.link else ""
    link_text = f"\n办理：{message.link}" if message.link else ""
    markdown = f"### 【{label}】{title}\n\n> 接收群：{group}\n\n{body}\n\n{action}{link_md}"
    text = f"【{label}】{title}\n接收群：{group}\n{body}\n{action}{link_text}"
    short_title = fit_chars(masked_title, SMS_PARAM_CHARS)
    sms_text = fit_chars(
        f"{label}：{masked_title}，请登录网格通处理。",
        SMS_SEGMENT_CHARS - _SMS_SIGNATURE_ALLOWANCE,
    )
    return Rendered(
        title=f"【{label}】{fit_chars(title, 40)}",
        markdown=markdown,
        text=text,
        sms_text=sms_text,
        sms_params={"kind": label, "title": short_title},
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
