"""Errors as every service answers them: RFC 9457 problem details (`application/problem+json`).

One shape for every 4xx and 5xx of every service, described by `problem.schema.json` beside
this module:

- `type`: `https://gridline.example/problems/<rule>`. Every error has a rule, so `type` always
  names one; `about:blank` is never used, so that a client can tell problems apart by `type`
  alone, whatever the status.
- `title`: short and Chinese, one per status (`TITLES`) unless a rule has its own: either way a
  type keeps its title.
- `status`: the HTTP status, repeated.
- `detail`: what happened this time and what to do, in Chinese, for people.
- `instance`: the request's path, without its query (a task link's token stays out).
- `rule`: the stable name programs match on (`body.too_large`, `staff.unauthenticated`).
- `errors` (422 for fields only): each refused field as `field` (a dotted path, see
  `field_path`), `rule` and `detail`.
- `counts` and `results` (intake's batch only, with 503): the per-record results of a batch some
  of whose records the broker could not confirm, as the 200 would carry them.

Routes raise `ProblemError` with a rule; `install` makes every other error an app can raise
(unknown route, wrong method, validation, an unexpected exception) a problem too, and says so
in the OpenAPI document.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException
from starlette.types import Scope

from gridline.logging import get_logger

log = get_logger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://gridline.example/problems/"
SCHEMA_FILE = Path(__file__).with_name("problem.schema.json")
# Its name among an OpenAPI document's schemas (intake's per-record `Problem` is another thing).
COMPONENT = "ProblemDetails"
# The rule of a 422 whose fields were refused; each field's own rule is in `errors`.
INVALID = "request.invalid"
# Input nested deeper than Python's JSON reader can recurse.
TOO_DEEP = "body.too_deep"
TOO_DEEP_DETAIL = "请求内容嵌套层级过深，无法读取"
# How many refused fields the 422's `detail` names; `errors` has them all.
_NAMED_IN_DETAIL = 5

# One title per status: RFC 9457 wants a type's title to stay the same between occurrences, and
# a rule always comes with the same status.
TITLES: dict[int, str] = {
    400: "请求无法读取",
    401: "未通过身份验证",
    403: "无权操作",
    404: "未找到",
    405: "不支持此请求方法",
    409: "与当前状态冲突",
    410: "已失效",
    413: "请求内容过大",
    422: "请求内容不符合要求",
    429: "请求过于频繁",
    500: "服务内部错误",
    502: "上游服务出错",
    503: "服务暂时不可用",
    504: "上游服务超时",
}

# The Chinese a 422's `detail` uses for pydantic's own rules (its messages are English); a
# rule of ours already has a Chinese message.
_SAID: dict[str, str] = {
    "missing": "缺少此项",
    "extra_forbidden": "不接受此项",
    "json_invalid": "不是合法的 JSON",
    "json_type": "应为 JSON 文本",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "dict_type": "应为对象",
    "list_type": "应为数组",
    "string_type": "应为字符串",
    "string_too_short": "过短",
    "string_too_long": "过长",
    "string_pattern_mismatch": "格式不正确",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限的数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "too_short": "条目过少",
    "too_long": "条目过多",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "literal_error": "不是允许的取值",
    "enum": "不是允许的取值",
    "date_from_datetime_parsing": "日期格式不正确",
    "date_parsing": "日期格式不正确",
    "datetime_parsing": "时间格式不正确",
    "datetime_from_date_parsing": "时间格式不正确",
    "timezone_aware": "时间须带时区",
    "union_tag_invalid": "不是已知的类别",
    "union_tag_not_found": "缺少类别",
    "value_error": "取值不正确",
}
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


class FieldProblem(TypedDict):
    """One refused field of a 422: where, which rule, and what is wrong."""

    field: str
    rule: str
    detail: str


class ProblemError(HTTPException):
    """An error answered as a problem; routes and their dependencies raise it.

    An `HTTPException`, so that what catches those (and FastAPI's dependencies) treats it so.
    """

    def __init__(
        self,
        status_code: int,
        rule: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        title: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code, detail=detail, headers=dict(headers or {}) or None)
        self.rule = rule
        # A title of the rule's own, where the status's says too little; the same every time.
        self.title = title
        # Extension members beyond `rule` (the schema names the ones allowed).
        self.extra = dict(extra or {})


def type_of(rule: str) -> str:
    """The problem type URI of a rule."""
    return TYPE_BASE + rule


def instance_of(scope: Scope) -> str:
    """The request's path as a URI reference, without its query."""
    path = scope.get("path") or "/"
    return quote(path, safe="/:@!$&'()*+,;=~", errors="replace")


def problem(
    status_code: int,
    rule: str,
    detail: str,
    *,
    instance: str,
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An error answer: `detail` says what happened for people, `rule` names it for programs.

    `title` is the status's (`TITLES`) unless the rule has its own, which it must then always
    have.
    """
    body = {
        "type": type_of(rule),
        "title": title or TITLES.get(status_code) or HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
        "instance": instance,
        "rule": rule,
        **(extra or {}),
    }
    return JSONResponse(
        writable(body), status_code=status_code, headers=headers, media_type=MEDIA_TYPE
    )


def field_path(loc: Sequence[int | str]) -> str:
    """A refused field's path: `records[3].phone` for `("body", "records", 3, "phone")`.

    The body's fields go without `body.` (as in a batch's per-record problems); the request's
    other parts keep theirs (`query.limit`, `header.idempotency-key`, `path.report_id`); the
    whole body is `body`.
    """
    parts = list(loc[1:]) if loc and loc[0] == "body" else list(loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def field_problems(errors: Iterable[Mapping[str, Any]]) -> list[FieldProblem]:
    """The refused fields of pydantic's (or FastAPI's) `errors()`: `loc`, `type` and `msg`.

    The value given is left out: it may be a person's ID number.
    """
    return [
        FieldProblem(field=field_path(tuple(e["loc"])), rule=str(e["type"]), detail=str(e["msg"]))
        for e in errors
    ]


def invalid(instance: str, errors: Sequence[FieldProblem]) -> JSONResponse:
    """The 422 of refused fields: each in `errors`, the first few named in `detail`."""
    named = [f"{e['field']}：{_said(e)}" for e in errors[:_NAMED_IN_DETAIL]]
    more = "等，详见 errors" if len(errors) > _NAMED_IN_DETAIL else ""
    detail = f"请求内容有{len(errors)}处不符合要求：{'；'.join(named)}{more}"
    return problem(
        422, INVALID, detail, instance=instance, extra={"errors": [dict(e) for e in errors]}
    )


def _said(error: FieldProblem) -> str:
    """A field's problem in Chinese: its own message if Chinese, else what its rule means."""
    if _CHINESE.search(error["detail"]):
        return error["detail"]
    return _SAID.get(error["rule"], f"不符合规则 {error['rule']}")


def writable(value: Any) -> Any:
    """`value` with infinite and NaN floats as text and lone surrogates escaped, so that JSON
    can write it: a refused field may have been `1e400` or `"\\ud800"`."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {writable(key): writable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [writable(item) for item in value]
    return value


def not_found(scope: Scope) -> JSONResponse:
    """The 404 of a path no route serves (also the surface gate's, which must look the same)."""
    return problem(
        404,
        "route.not_found",
        "此地址没有对应的接口，请核对请求路径",
        instance=instance_of(scope),
    )


# What an HTTPException raised without a rule is answered with: by Starlette's router (no
# route, wrong method) or FastAPI (a body it could not read). Anything else is `http.<status>`.
_GENERIC: dict[int, tuple[str, str]] = {
    400: ("body.unreadable", "请求内容无法读取，请核对其格式"),
    401: ("http.unauthorized", "需要身份验证"),
    403: ("http.forbidden", "无权访问"),
    404: ("route.not_found", "此地址没有对应的接口，请核对请求路径"),
    413: ("body.too_large", "请求内容过大，未予受理"),
    415: ("body.media_type", "请求内容的类型不受支持"),
    429: ("http.too_many_requests", "请求过于频繁，请稍后再试"),
    503: ("http.unavailable", "服务暂时不可用，请稍后重试"),
}


async def on_http_error(request: Request, error: Exception) -> Response:
    """An `HTTPException` as a problem: a `ProblemError` with its rule, any other by status."""
    assert isinstance(error, HTTPException)
    status_code, headers = error.status_code, error.headers
    if not is_body_allowed_for_status_code(status_code):
        return Response(status_code=status_code, headers=headers)
    instance = instance_of(request.scope)
    if isinstance(error, ProblemError):
        return problem(
            status_code,
            error.rule,
            str(error.detail),
            instance=instance,
            headers=headers,
            title=error.title,
            extra=error.extra,
        )
    if status_code == 400 and isinstance(error.__cause__, RecursionError):
        # FastAPI's 400 for a body its JSON reader gave up on, recursing once per level.
        return problem(400, TOO_DEEP, TOO_DEEP_DETAIL, instance=instance, headers=headers)
    if status_code == 405:
        allowed = (headers or {}).get("Allow", "")
        detail = f"此地址不接受 {request.method} 请求；可用的方法：{allowed or '无'}"
        return problem(405, "method.not_allowed", detail, instance=instance, headers=headers)
    rule, said = _GENERIC.get(status_code, (f"http.{status_code}", ""))
    given = str(error.detail)
    # Starlette's default detail is the English phrase of the status: say it in Chinese.
    if not said or given != HTTPStatus(status_code).phrase:
        title = said or TITLES.get(status_code) or "请求未能完成"
        said = given if _CHINESE.search(given) else f"{title}（{given}）"
    return problem(status_code, rule, said, instance=instance, headers=headers)


async def on_request_invalid(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 as a problem whose `errors` name each refused field."""
    assert isinstance(error, RequestValidationError)
    return invalid(instance_of(request.scope), field_problems(error.errors()))


async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
    """A 500 as a problem; what went wrong stays in the log, not in the answer."""
    log.error("unexpected error", error=type(error).__name__, path=request.url.path)
    return problem(
        500,
        "server.error",
        "服务内部出错，本次请求未完成；请稍后重试，如反复出现请联系运维",
        instance=instance_of(request.scope),
    )


def schema() -> dict[str, Any]:
    """The JSON Schema every error body validates against."""
    found: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return found


def install(app: FastAPI) -> None:
    """Answer every error of `app` as a problem, and document so in its OpenAPI.

    Handlers for other exceptions (Redis down, say) build their answers with `problem`.
    """
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_request_invalid)
    # Starlette's last resort: answered, then raised on for the server to log.
    app.add_exception_handler(Exception, on_unexpected)
    _document(app)


def _document(app: FastAPI) -> None:
    """Every operation's error answers in the OpenAPI document are problems: the documented
    statuses, and `default` for any other."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            _as_problems(document)
            app.openapi_schema = document
        return app.openapi_schema

    # FastAPI's documented way to change the document: replace the method that builds it.
    app.openapi = openapi  # type: ignore[method-assign]


def _as_problems(document: dict[str, Any]) -> None:
    """Rewrite a built OpenAPI document's error responses to the problem schema."""
    content = {MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{COMPONENT}"}}}
    for path in document.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code, response in responses.items():
                if code[:1] in ("4", "5"):
                    response["content"] = content
                    if code == "422":
                        response["description"] = (
                            "Refused fields (`rule` request.invalid), each in `errors`."
                        )
            responses.setdefault(
                "default",
                {"description": "Any other error: a problem naming its rule.", "content": content},
            )
    embedded = {k: v for k, v in schema().items() if k not in ("$schema", "$id")}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if COMPONENT in schemas:
        raise ValueError(f"a model of the app is named {COMPONENT}, the problem schema's name")
    schemas[COMPONENT] = embedded
    # FastAPI's own 422 shape is answered nowhere now (the first names the second).
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(document):
            schemas.pop(unused, None)
