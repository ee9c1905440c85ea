"""Rendering: Chinese templates, masking at render time, inert user text, SMS lengths."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from gridline.privacy import scrub_text
from services.notify.templates import (
    SMS_PARAM_CHARS,
    SMS_SEGMENT_CHARS,
    fit_utf8,
    inert,
    render,
)
from tests.notify import samples


def test_personal_data_is_masked_at_render_time() -> None:
    rendered = render(samples.message())
    for text in (
        rendered.markdown,
        rendered.text,
        rendered.sms_text,
        *rendered.sms_params.values(),
    ):
        assert samples.RESIDENT_ID not in text
        assert samples.RESIDENT_PHONE not in text
    # In markdown the mask's stars are full-width too, so they cannot pair into emphasis.
    assert "＊＊＊＊＊＊＊＊＊＊＊＊＊＊1234" in rendered.markdown
    assert "138＊＊＊＊1111" in rendered.markdown
    assert "**************1234" in scrub_text(samples.message().text)


def test_grouped_and_full_width_numbers_and_bidi_controls_do_not_reach_a_chat() -> None:
    leaky = (
        "房东 138 1234 5678，租客 ＋８６ １３９－８７６５－４３２１，"
        "身份证 620102 19900101 1234，护照 E12345678，住 三和\u202e小区\u200b2号楼"
    )
    rendered = render(samples.message(title="到达：\u202e138-1234-5678", text=leaky))
    for text in (rendered.markdown, rendered.text, rendered.sms_text, rendered.title):
        for clear in ("1234 5678", "12345678", "８７６５", "19900101", "\u202e", "\u200b"):
            assert clear not in text, (clear, text)
    assert "138＊＊＊＊5678" in rendered.markdown and "139＊＊＊＊4321" in rendered.markdown
    assert "＊＊＊＊＊＊＊＊＊＊＊＊＊＊1234" in rendered.markdown
    assert "三和小区2号楼" in rendered.markdown


def test_markdown_and_mentions_from_user_text_are_inert() -> None:
    rendered = render(samples.message())
    body = rendered.markdown.split("\n\n", 2)[2]
    for syntax in ("[", "](", "<@", "@all", "**", "<"):
        assert syntax not in body.split("[打开任务页办理]")[0], syntax
    assert "［点我］（http://evil）" in rendered.markdown


# Each character that could start markup or a mention, as it must reach a chat.
_FULL_WIDTH = dict(zip("*_[]()#><`|~@!\\", "＊＿［］（）＃＞＜｀｜～＠！＼", strict=True))


@given(st.text(alphabet=st.sampled_from([*_FULL_WIDTH, "\r", "\n", "三", "和", " ", "2"])))
def test_every_markup_character_becomes_its_full_width_form(text: str) -> None:
    expected = "".join(
        _FULL_WIDTH.get(char, " " if char in "\r\n" else char) for char in scrub_text(text)
    )
    assert inert(text) == expected


def test_templates_per_kind_in_chinese() -> None:
    assert render(samples.message()).title.startswith("【新任务】")
    escalation = render(samples.message(kind="NOTIFICATION_KIND_ESCALATION"))
    assert escalation.title.startswith("【上报】")
    # What to do is the builder's to say: no closing line claims lateness for every escalation.
    assert "未按时处置" not in escalation.markdown


def test_sms_words_fit_one_segment_and_the_link_follows_them() -> None:
    message = samples.message(title="很长的标题" * 30)
    rendered = render(message)
    assert rendered.sms_text.endswith(f"，请点链接办理：{message.link}")
    assert len(rendered.sms_text.removesuffix(message.link)) <= SMS_SEGMENT_CHARS
    assert all(len(v) <= SMS_PARAM_CHARS for v in rendered.sms_params.values())
    unlinked = render(replace(message, link=""))
    assert len(unlinked.sms_text) <= SMS_SEGMENT_CHARS and "链接" not in unlinked.sms_text


@given(st.text(max_size=3000), st.integers(min_value=8, max_value=4096))
def test_fit_utf8_never_exceeds_the_limit(text: str, limit: int) -> None:
    fitted = fit_utf8(text, limit)
    assert len(fitted.encode()) <= limit
    assert fitted == text or fitted.endswith("…")


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.text(alphabet="张三住址，", max_size=5))
def test_any_mobile_in_text_is_masked(phone: str, around: str) -> None:
    assert phone not in scrub_text(f"{around}{phone}{around}")
    assert phone not in inert(f"{around}+86 {phone}")
