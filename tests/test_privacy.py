"""The shared scrubber: every written form of a mobile, ID number and passport masked, invisible
characters removed, Chinese text left alone; URLs and error texts redacted."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridline.privacy import (
    _PLAIN,
    _fold_char,
    redact_error,
    redact_query,
    redact_url,
    scrub_text,
)

PHONE = "13812345678"
PHONE_MASK = "138****5678"
ID_NUMBER = "11010519491231002X"
ID_MASK = "**************002X"

_FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_BOLD = str.maketrans("0123456789", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗")
_CIRCLED = str.maketrans("123456789", "①②③④⑤⑥⑦⑧⑨")

# (as written, as it must come out)
PHONES = [
    (PHONE, PHONE_MASK),
    ("138 1234 5678", PHONE_MASK),
    ("138-1234-5678", PHONE_MASK),
    ("138.1234.5678", PHONE_MASK),
    ("138 - 1234 - 5678", PHONE_MASK),
    ("1381234 5678", PHONE_MASK),
    ("1 3 8 1 2 3 4 5 6 7 8", PHONE_MASK),
    ("138\u30001234\u30005678", PHONE_MASK),  # ideographic spaces
    ("138—1234—5678", PHONE_MASK),  # em dashes
    (PHONE.translate(_FULL_WIDTH), PHONE_MASK),
    ("１３８－１２３４－５６７８", PHONE_MASK),
    (PHONE.translate(_ARABIC_INDIC), PHONE_MASK),
    (PHONE.translate(_BOLD), PHONE_MASK),
    (PHONE.translate(_CIRCLED), PHONE_MASK),
    ("1\u200b38\u200d1234\u20605678", PHONE_MASK),  # zero-width characters inside
    ("+8613812345678", f"+86{PHONE_MASK}"),
    ("+86 138 1234 5678", f"+86 {PHONE_MASK}"),
    ("+86-138-1234-5678", f"+86-{PHONE_MASK}"),
    ("0086 13812345678", f"0086 {PHONE_MASK}"),
    ("008613812345678", f"0086{PHONE_MASK}"),
    ("8613812345678", f"86{PHONE_MASK}"),
    ("86-138-1234-5678", f"86-{PHONE_MASK}"),
    ("(86)13812345678", f"(86){PHONE_MASK}"),
    ("（+86）138 1234 5678", f"（+86）{PHONE_MASK}"),
    ("＋８６１３８１２３４５６７８", f"＋86{PHONE_MASK}"),
    ("tel13812345678", f"tel{PHONE_MASK}"),
]
IDS = [
    (ID_NUMBER, ID_MASK),
    (ID_NUMBER.lower(), ID_MASK),
    ("110105 19491231 002X", ID_MASK),
    ("110105-19491231-002x", ID_MASK),
    ("110105 1949 1231 002X", ID_MASK),
    ("110105-1949-1231-002-X", ID_MASK),
    (ID_NUMBER.translate(_FULL_WIDTH), ID_MASK),
    ("１１０１０５１９４９１２３１００２ｘ", ID_MASK),
    ("1101\u200b0519491231\u202e002X", ID_MASK),
    ("620102199003071234", "**************1234"),
    ("110105194913310021", "**************0021"),  # a mistyped birth date is masked all the same
    (f"ID:{ID_NUMBER}x", f"ID:{ID_MASK}x"),
]
DOCUMENTS = [
    ("E12345678", "*******78"),  # e-passport
    ("e12345678", "*******78"),
    ("EA1234567", "*******67"),
    ("G12345678", "*******78"),  # older passport
    ("Ｅ１２３４５６７８", "*******78"),
    ("H12345678", "*******78"),  # Hong Kong residents' permit
    ("M1234567890", "*********90"),  # Macau residents' permit, older form
    ("C12345678", "*******78"),  # mainland permit to Hong Kong and Macau
]
UNCHANGED = [
    "皋兰县石洞镇城北社区三汇小区23号楼3单元301室",
    "甘肃省兰州市城关区（东岗街道）：和平路，幸福巷。",
    "上海市浦東新區陸家嘴",
    "2022-01-28 18:40 到达，座机0931-8123456，邮编730000",
    "E座1201室，B2停车场",
    "**************1234 138****5678",  # already masked
]
INVISIBLE = [
    *[chr(c) for c in range(0x200B, 0x2010)],
    *[chr(c) for c in range(0x202A, 0x202F)],
    *[chr(c) for c in range(0x2060, 0x2065)],
    *[chr(c) for c in range(0x2066, 0x206A)],
    "\ufeff",
    "\u061c",
    "\u00ad",
    "\u3164",
    "\x00",
    "\x1b",
]


def digits_of(text: str) -> str:
    """The digits of a text in any script, as ASCII."""
    return "".join(str(int(c)) for c in text if c.isdecimal())


def assert_no_run_survives(original: str, scrubbed: str, run: int = 5) -> None:
    """No `run` consecutive digits of the original number are left in the scrubbed text."""
    digits, left = digits_of(original), digits_of(scrubbed)
    for start in range(len(digits) - run + 1):
        assert digits[start : start + run] not in left, (original, scrubbed)


@pytest.mark.parametrize(("written", "mask"), PHONES + IDS + DOCUMENTS)
def test_every_written_form_comes_out_as_its_mask(written: str, mask: str) -> None:
    scrubbed = scrub_text(f"住址：三和小区，联系{written}。")
    assert scrubbed == f"住址：三和小区，联系{mask}。"
    # A +86 prefix is kept as written: the number is what must not survive.
    assert_no_run_survives(PHONE if mask.endswith(PHONE_MASK) else written, scrubbed)


def test_masks_show_at_most_four_of_an_id_and_seven_of_a_mobile() -> None:
    assert sum(c != "*" for c in scrub_text(ID_NUMBER)) == 4
    assert sum(c != "*" for c in scrub_text(PHONE)) == 7


def test_two_mobiles_written_in_groups_stay_two_mobiles() -> None:
    assert scrub_text("138 1234 5678 139 8765 4321") == "138****5678 139****4321"
    assert scrub_text("13812345678,13987654321") == "138****5678,139****4321"


@pytest.mark.parametrize("text", UNCHANGED)
def test_text_without_personal_numbers_is_left_as_it_is(text: str) -> None:
    assert scrub_text(text) == text


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_zero_width_bidi_and_control_characters_are_removed(char: str) -> None:
    assert scrub_text(f"三和{char}小区{char}2号楼") == "三和小区2号楼"


def test_layout_whitespace_is_kept() -> None:
    assert scrub_text("三和小区\n2号楼\t301") == "三和小区\n2号楼\t301"


def test_every_character_the_quick_path_passes_is_one_folding_leaves_as_it_is() -> None:
    # Text made only of these skips the folding: none of them may be one it changes.
    passed = [chr(code) for code in range(0x10000) if _PLAIN.fullmatch(chr(code))]
    assert len(passed) > 20_000  # ASCII, Chinese and its punctuation
    assert [c for c in passed if _fold_char(c) != c] == []


_SEPARATORS = st.sampled_from(["", "", "", " ", "-", "－", ".", "\u3000", " - ", "\u200b"])


@given(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.lists(_SEPARATORS, min_size=10, max_size=10),
    st.booleans(),
)
def test_any_mobile_however_grouped_is_masked(phone: str, seps: list[str], wide: bool) -> None:
    digits = phone.translate(_FULL_WIDTH) if wide else phone
    written = digits[0] + "".join(sep + digit for sep, digit in zip(seps, digits[1:], strict=True))
    scrubbed = scrub_text(f"住{written}号")
    assert scrubbed == f"住{phone[:3]}****{phone[-4:]}号"


@given(
    st.from_regex(
        r"[1-8][0-9]{5}(19[0-9]{2}|20[0-2][0-9])(0[1-9]|1[0-2])(0[1-9]|[12][0-9])[0-9]{3}[0-9Xx]",
        fullmatch=True,
    ),
    st.lists(_SEPARATORS, min_size=17, max_size=17),
)
def test_any_id_number_however_grouped_is_masked(id_number: str, seps: list[str]) -> None:
    written = id_number[0] + "".join(
        sep + char for sep, char in zip(seps, id_number[1:], strict=True)
    )
    scrubbed = scrub_text(f"身份证{written}。")
    assert scrubbed == f"身份证{'*' * 14}{id_number[-4:].upper()}。"


URLS = [
    # a task link: the signature and expiry in the query, the task id after /t/
    (
        "https://gridline.example/t/5f0c2b7e9a1d4c3b8e6f1a2b3c4d5e6f?e=1700000000&s=Zm9vYmFy-_x",
        "https://gridline.example/t/REDACTED?e=REDACTED&s=REDACTED",
    ),
    # WeCom, DingTalk and Feishu robots
    (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=REDACTED",
    ),
    (
        "https://oapi.dingtalk.com/robot/send?access_token=abc123&timestamp=1700000000000&sign=a%2Bb%3D",
        "https://oapi.dingtalk.com/robot/send?access_token=REDACTED&timestamp=REDACTED&sign=REDACTED",
    ),
    (
        "https://open.feishu.cn/open-apis/bot/v2/hook/feishu-hook-1",
        "https://open.feishu.cn/open-apis/bot/v2/hook/REDACTED",
    ),
    # a group's own webhook whose path is its key; credentials; a fragment
    (
        "https://hooks.example/services/T0001/B0002/XkT3vQ9sLm2Pq8Rz",
        "https://hooks.example/services/T0001/B0002/REDACTED",
    ),
    ("https://user:pw@h.example:8443/x#token=abc", "https://h.example:8443/x"),
    # a server's target, and personal numbers in a path
    ("/t/abc?e=1&s=sig", "/t/REDACTED?e=REDACTED&s=REDACTED"),
    ("/v1/people/13812345678/x", "/v1/people/138****5678/x"),
    ("/v1/people/138%201234%205678/x", "/v1/people/REDACTED/x"),
    ("/v1/reports:batch", "/v1/reports:batch"),
    ("/v1/zero-reports/summary", "/v1/zero-reports/summary"),
]


@pytest.mark.parametrize(("url", "redacted"), URLS)
def test_urls_lose_queries_tokens_and_credentials(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_a_query_alone_keeps_its_names() -> None:
    assert redact_query("key=abc&sign=x&page=2") == "key=REDACTED&sign=REDACTED&page=REDACTED"
    assert redact_query("") == ""


SQLALCHEMY_ERROR = (
    "(sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) <class "
    "'asyncpg.exceptions.UniqueViolationError'>: duplicate key value violates unique constraint "
    '"tasks_pkey"\nDETAIL:  Key (address, phone)=(三和小区2号楼, 13812345678) already exists.\n'
    "[SQL: INSERT INTO tasks (address, phone, link) VALUES ($1, $2, $3)]\n"
    "[parameters: ('三和小区2号楼', '13812345678', 'https://g.example/t/abc?e=1&s=SIGNATURE')]\n"
    "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)


def test_an_error_loses_sql_parameters_and_the_values_postgresql_quotes() -> None:
    redacted = redact_error(SQLALCHEMY_ERROR)
    assert "三和小区" not in redacted and "SIGNATURE" not in redacted
    assert_no_run_survives(PHONE, redacted)
    assert "[parameters: REDACTED]" in redacted
    assert "Key (address, phone)=(REDACTED) already exists." in redacted
    assert "[SQL: INSERT INTO tasks (address, phone, link) VALUES ($1, $2, $3)]" in redacted
    assert "https://sqlalche.me/e/20/gkpj" in redacted
    row = 'new row for relation "reports" violates check constraint\nDETAIL:  Failing row '
    assert redact_error(f"{row}contains (r1, 张伟, 13812345678).") == (f"{row}contains (REDACTED).")


def test_an_error_loses_robot_keys_and_personal_numbers() -> None:
    text = (
        "HTTPStatusError: Client error '404' for url "
        "'https://oapi.dingtalk.com/robot/send?access_token=TOKEN123&sign=SIGN'; key=WECOMKEY "
        f"about {ID_NUMBER}"
    )
    redacted = redact_error(text)
    for secret in ("TOKEN123", "SIGN'", "WECOMKEY", ID_NUMBER):
        assert secret not in redacted
    assert re.search(r"access_token=REDACTED&sign=REDACTED'; key=REDACTED", redacted)
    assert ID_MASK in redacted
    dsn = "cannot reach postgresql+asyncpg://gridline:s3cret@db:5432/gridline"
    assert redact_error(dsn) == "cannot reach postgresql+asyncpg://db:5432/gridline"
