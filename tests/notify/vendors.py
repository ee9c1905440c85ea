"""Loopback servers that check requests the way each vendor does and answer as it does.

One threaded HTTP server holds every vendor at its own path; each vendor knows its keys and
secrets, recomputes signatures, checks timestamp windows, body schemas and size limits, and can
be told to answer with an error or rate-limit code for a while.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, quote, urlsplit

WECOM_KEY = "wecom-key-1"
DINGTALK_TOKEN = "ding-token-1"
DINGTALK_SECRET = "SECding-secret-1"
FEISHU_TOKEN = "feishu-hook-1"
FEISHU_SECRET = "feishu-secret-1"
ALIYUN_KEY_ID = "LTAI-test"
ALIYUN_KEY_SECRET = "aliyun-secret"
ALIYUN_SIGN = "网格通"
ALIYUN_TEMPLATE = "SMS_100001"
TENCENT_ID = "AKID-test"
TENCENT_KEY = "tencent-key"
TENCENT_APP = "1400000001"
TENCENT_TEMPLATE = "100001"
GATEWAY_TOKEN = "gateway-token"
SIGNED_SECRET = "signed-secret"


@dataclass
class Received:
    """One request as it arrived, and what the vendor answered."""

    vendor: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    answer: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the vendor accepted it."""
        a = self.answer
        return (
            a.get("errcode") == 0
            or a.get("code") == 0
            or a.get("Code") == "OK"
            or a.get("ok") is True
            or any(s.get("Code") == "Ok" for s in a.get("Response", {}).get("SendStatusSet", []))
        )


@dataclass
class Vendors:
    """The running server: its base URL, what it received, and scripted failures."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    # vendor -> (status, answer) to give instead of the normal one, and how many times.
    scripted: dict[str, tuple[int, dict[str, Any], int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Seconds each answer takes, to stretch a batch for a crash test.
    delay: float = 0.0
    # Requests being answered now, per vendor, and the most at once so far.
    in_flight: dict[str, int] = field(default_factory=dict)
    peak_in_flight: dict[str, int] = field(default_factory=dict)
    # Send times per robot, for the vendors' documented rate limits.
    sends: dict[str, list[float]] = field(default_factory=dict)

    def over_limit(self, robot: str, limits: tuple[tuple[int, float], ...]) -> bool:
        """Count a send to `robot`; whether it exceeds one of its (sends, seconds) limits."""
        with self.lock:
            times = self.sends.setdefault(robot, [])
            moment = time.monotonic()
            times.append(moment)
            return any(
                sum(1 for t in times if moment - t < seconds) > sends for sends, seconds in limits
            )

    def of(self, vendor: str, *, ok: bool | None = None) -> list[Received]:
        """What one vendor received (optionally only accepted or refused requests)."""
        with self.lock:
            return [r for r in self.received if r.vendor == vendor and (ok is None or r.ok == ok)]

    @contextmanager
    def failing(
        self, vendor: str, status: int, answer: dict[str, Any], times: int = 10**6
    ) -> Iterator[None]:
        """Answer `vendor`'s next `times` requests with this status and body."""
        with self.lock:
            self.scripted[vendor] = (status, answer, times)
        try:
            yield
        finally:
            with self.lock:
                self.scripted.pop(vendor, None)

    def script(self, vendor: str, status: int, answer: dict[str, Any], times: int) -> None:
        """Like `failing`, until `times` requests have been answered so."""
        with self.lock:
            self.scripted[vendor] = (status, answer, times)


class Refused(Exception):
    """The vendor refuses the request with this status and body."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        super().__init__(answer)
        self.status = status
        self.answer = answer


def _json(raw: bytes, headers: dict[str, str], error: dict[str, Any]) -> dict[str, Any]:
    if not headers.get("content-type", "").startswith("application/json"):
        raise Refused(200, error)
    try:
        body = json.loads(raw)
    except ValueError:
        raise Refused(200, error) from None
    if not isinstance(body, dict):
        raise Refused(200, error)
    return body


def wecom(query: dict[str, str], headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """WeCom group robot: key, msgtype text/markdown, content byte limits."""
    if query.get("key") != WECOM_KEY:
        raise Refused(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
    body = _json(raw, headers, {"errcode": 40008, "errmsg": "invalid message type"})
    kind = body.get("msgtype")
    if kind == "text":
        content = body["text"].get("content", "")
        limit = 2048
        allowed = {"content", "mentioned_list", "mentioned_mobile_list"}
        extra = set(body["text"]) - allowed
    elif kind == "markdown":
        content = body["markdown"].get("content", "")
        limit = 4096
        extra = set(body["markdown"]) - {"content"}
    else:
        raise Refused(200, {"errcode": 40008, "errmsg": "invalid message type"})
    if extra:
        raise Refused(200, {"errcode": 40058, "errmsg": f"unknown field {sorted(extra)}"})
    if not content:
        raise Refused(200, {"errcode": 44004, "errmsg": "empty content"})
    if len(content.encode()) > limit:
        raise Refused(200, {"errcode": 40058, "errmsg": "content exceed max length"})
    return {"errcode": 0, "errmsg": "ok"}


def dingtalk(query: dict[str, str], headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """DingTalk custom robot: token, timestamp within an hour, sign recomputed, markdown schema."""
    if query.get("access_token") != DINGTALK_TOKEN:
        raise Refused(200, {"errcode": 300001, "errmsg": "token is not exist"})
    timestamp = query.get("timestamp", "")
    if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600 * 1000:
        raise Refused(200, {"errcode": 310000, "errmsg": "sign not match, timestamp invalid"})
    expected = base64.b64encode(
        hmac.new(
            DINGTALK_SECRET.encode(),
            f"{timestamp}\n{DINGTALK_SECRET}".encode(),
            hashlib.sha256,
        ).digest()
    ).decode()
    if query.get("sign") != expected:
        raise Refused(200, {"errcode": 310000, "errmsg": "sign not match"})
    body = _json(raw, headers, {"errcode": 40035, "errmsg": "缺少参数 json"})
    if body.get("msgtype") == "markdown":
        md = body.get("markdown", {})
        if not md.get("title") or not md.get("text"):
            raise Refused(200, {"errcode": 40035, "errmsg": "缺少参数 markdown.title/text"})
        content = md["text"]
    elif body.get("msgtype") == "text":
        content = body.get("text", {}).get("content", "")
    else:
        raise Refused(200, {"errcode": 40008, "errmsg": "msgtype invalid"})
    if len(content.encode()) > 20000:
        raise Refused(200, {"errcode": 460101, "errmsg": "message too long"})
    at = body.get("at", {})
    if not isinstance(at.get("atUserIds", []), list) or not isinstance(
        at.get("isAtAll", False), bool
    ):
        raise Refused(200, {"errcode": 40035, "errmsg": "at invalid"})
    return {"errcode": 0, "errmsg": "ok"}


def feishu(path: str, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """Feishu custom bot: hook token, signature in the body, 20 KB body, interactive card."""
    if path != f"/open-apis/bot/v2/hook/{FEISHU_TOKEN}":
        raise Refused(
            404, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
        )
    if len(raw) > 20 * 1024:
        raise Refused(200, {"code": 9499, "msg": "request body too large"})
    body = _json(raw, headers, {"code": 9499, "msg": "Bad Request"})
    timestamp = str(body.get("timestamp", ""))
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 3600:
        raise Refused(
            200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
        )
    expected = base64.b64encode(
        hmac.new(f"{timestamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    if body.get("sign") != expected:
        raise Refused(
            200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
        )
    if body.get("msg_type") == "interactive":
        card = body.get("card", {})
        if not card.get("elements") or card.get("header", {}).get("title", {}).get("tag") != (
            "plain_text"
        ):
            raise Refused(200, {"code": 11246, "msg": "card content invalid"})
    elif body.get("msg_type") == "text":
        if not body.get("content", {}).get("text"):
            raise Refused(200, {"code": 9499, "msg": "content.text missing"})
    else:
        raise Refused(200, {"code": 9499, "msg": "msg_type invalid"})
    return {"code": 0, "data": {}, "msg": "success"}


def _aliyun_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def aliyun(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """Alibaba Cloud SendSms: RPC signature recomputed, 15-minute timestamp, template params."""
    form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    request_id = "A1B2C3"
    if form.get("AccessKeyId") != ALIYUN_KEY_ID:
        raise Refused(404, {"Code": "InvalidAccessKeyId.NotFound", "RequestId": request_id})
    given = form.pop("Signature", "")
    canonical = "&".join(
        f"{_aliyun_encode(k)}={_aliyun_encode(v)}" for k, v in sorted(form.items())
    )
    to_sign = f"POST&%2F&{_aliyun_encode(canonical)}"
    expected = base64.b64encode(
        hmac.new(f"{ALIYUN_KEY_SECRET}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    if given != expected:
        raise Refused(
            400,
            {
                "Code": "SignatureDoesNotMatch",
                "Message": "Specified signature is not matched with our calculation.",
                "RequestId": request_id,
            },
        )
    stamp = datetime.strptime(form.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if abs((datetime.now(UTC) - stamp).total_seconds()) > 900:
        raise Refused(400, {"Code": "InvalidTimeStamp.Expired", "RequestId": request_id})
    required = {
        "Action": "SendSms",
        "Version": "2017-05-25",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Format": "JSON",
    }
    for key, value in required.items():
        if form.get(key) != value:
            raise Refused(
                400, {"Code": "MissingParameter", "Message": key, "RequestId": request_id}
            )
    if form.get("SignName") != ALIYUN_SIGN:
        raise Refused(
            200,
            {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "签名不合法", "RequestId": request_id},
        )
    if form.get("TemplateCode") != ALIYUN_TEMPLATE:
        raise Refused(
            200,
            {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法", "RequestId": request_id},
        )
    phones = form.get("PhoneNumbers", "")
    if not all(p.isdigit() and len(p) == 11 for p in phones.split(",")):
        raise Refused(
            200,
            {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": request_id},
        )
    params = json.loads(form.get("TemplateParam", "{}"))
    if set(params) != {"kind", "title"} or any(len(str(v)) > 35 for v in params.values()):
        raise Refused(
            200,
            {
                "Code": "isv.INVALID_JSON_PARAM",
                "Message": "JSON参数不合法",
                "RequestId": request_id,
            },
        )
    return {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": request_id}


def tencent(headers: dict[str, str], raw: bytes, host: str) -> dict[str, Any]:
    """Tencent Cloud SendSms: TC3-HMAC-SHA256 recomputed, 5-minute window, body schema."""

    def error(code: str, message: str) -> Refused:
        return Refused(
            200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "r-1"}}
        )

    if headers.get("x-tc-action") != "SendSms" or headers.get("x-tc-version") != "2021-01-11":
        raise error("InvalidAction", "action or version")
    if not headers.get("x-tc-region"):
        raise error("MissingParameter", "X-TC-Region")
    stamp = int(headers.get("x-tc-timestamp", "0"))
    if abs(time.time() - stamp) > 300:
        raise error("AuthFailure.SignatureExpire", "signature expired")
    auth = headers.get("authorization", "")
    try:
        algorithm, rest = auth.split(" ", 1)
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    except ValueError:
        raise error("AuthFailure.InvalidAuthorization", "malformed") from None
    credential = parts.get("Credential", "").split("/")
    if algorithm != "TC3-HMAC-SHA256" or credential[0] != TENCENT_ID:
        raise error("AuthFailure.SecretIdNotFound", "secret id")
    date = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
    if credential[1:] != [date, "sms", "tc3_request"]:
        raise error("AuthFailure.InvalidAuthorization", "credential scope")
    signed = parts.get("SignedHeaders", "")
    # TC3 lower-cases header names and values in the canonical request.
    canonical_headers = "".join(
        f"{h}:{headers.get(h, '').strip().lower()}\n" for h in signed.split(";")
    )
    canonical = f"POST\n/\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(raw).hexdigest()}"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{date}/sms/tc3_request\n{digest}"
    key = hmac.new(f"TC3{TENCENT_KEY}".encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"sms", hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if parts.get("Signature") != expected or headers.get("host") != host:
        raise error("AuthFailure.SignatureFailure", "signature mismatch")
    body = json.loads(raw)
    if body.get("SmsSdkAppId") != TENCENT_APP or body.get("TemplateId") != TENCENT_TEMPLATE:
        raise error("FailedOperation.TemplateIncorrectOrUnapproved", "template")
    numbers = body.get("PhoneNumberSet", [])
    if not numbers or not all(n.startswith("+86") and len(n) == 14 for n in numbers):
        raise error("InvalidParameterValue.IncorrectPhoneNumber", "phone")
    if not all(isinstance(p, str) for p in body.get("TemplateParamSet", [])):
        raise error("InvalidParameterValue.TemplateParameterFormatError", "params")
    return {
        "Response": {
            "SendStatusSet": [
                {
                    "SerialNo": "2019:1",
                    "PhoneNumber": n,
                    "Fee": 1,
                    "SessionContext": body.get("SessionContext", ""),
                    "Code": "Ok",
                    "Message": "send success",
                    "IsoCode": "CN",
                }
                for n in numbers
            ],
            "RequestId": "r-1",
        }
    }


def gateway(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """The generic SMS gateway: bearer token, Idempotency-Key, {phone, text, id}; a long SMS of
    up to five segments (67 characters each once concatenated), as carriers deliver."""
    if headers.get("authorization") != f"Bearer {GATEWAY_TOKEN}":
        raise Refused(401, {"error": "unauthorized"})
    body = _json(raw, headers, {"error": "json"})
    if set(body) != {"phone", "text", "id"} or headers.get("idempotency-key") != body["id"]:
        raise Refused(400, {"error": "schema"})
    if len(body["text"]) > 5 * 67:
        raise Refused(400, {"error": "more than five segments"})
    return {"ok": True}


def signed(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """The signed webhook: HMAC-SHA256 over "timestamp." + body, five-minute window."""
    stamp = headers.get("x-gridline-timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
        raise Refused(401, {"error": "stale"})
    expected = (
        "sha256="
        + hmac.new(SIGNED_SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    )
    if not hmac.compare_digest(headers.get("x-gridline-signature", ""), expected):
        raise Refused(401, {"error": "bad signature"})
    _json(raw, headers, {"error": "json"})
    return {"ok": True}


# Per robot: the documented limits, and the answer over them (code field, code, message).
RATE_LIMITS: dict[str, tuple[tuple[tuple[int, float], ...], str, tuple[int, str, str]]] = {
    "wecom": (((20, 60.0),), "errcode", (45009, "errmsg", "api freq out of limit")),
    "dingtalk": (((20, 60.0),), "errcode", (130101, "errmsg", "send too fast, exceed 20 times")),
    "feishu": (((100, 60.0), (5, 1.0)), "code", (9499, "msg", "too many request")),
}


class _Server(ThreadingHTTPServer):
    # Concurrent deliveries open many connections at once; the default backlog of 5 would
    # make the rest wait a second for a SYN retry.
    request_queue_size = 128


@contextmanager
def running_vendors() -> Iterator[Vendors]:
    """Start the server on a free loopback port."""
    state = Vendors()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            split = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            host = f"127.0.0.1:{cast(_Server, self.server).server_address[1]}"
            vendor, path = split.path.split("/", 2)[1], "/" + split.path.split("/", 2)[2]
            checks = {
                "wecom": lambda: (
                    wecom(query, headers, raw) if path == "/cgi-bin/webhook/send" else _404()
                ),
                "dingtalk": lambda: (
                    dingtalk(query, headers, raw) if path == "/robot/send" else _404()
                ),
                "feishu": lambda: feishu(path, headers, raw),
                "aliyun": lambda: aliyun(headers, raw),
                "tencent": lambda: tencent(headers, raw, host),
                "gateway": lambda: gateway(headers, raw),
                "signed": lambda: signed(headers, raw),
                "hooks": lambda: _json(raw, headers, {"error": "json"}) and {"ok": True},
            }
            status = 404
            answer: dict[str, Any] = {"error": "no such vendor"}
            with state.lock:
                scripted = state.scripted.get(vendor)
                if scripted is not None:
                    status, answer, times = scripted
                    if times <= 1:
                        del state.scripted[vendor]
                    else:
                        state.scripted[vendor] = (status, answer, times - 1)
            if scripted is None and vendor in checks:
                try:
                    status, answer = 200, checks[vendor]()
                except Refused as refused:
                    status, answer = refused.status, refused.answer
                if status == 200 and vendor in RATE_LIMITS:
                    limits, code, body = RATE_LIMITS[vendor]
                    robot = query.get("key") or query.get("access_token") or path
                    if state.over_limit(f"{vendor}:{robot}", limits):
                        answer = {code: body[0], body[1]: body[2]}
            with state.lock:
                state.in_flight[vendor] = state.in_flight.get(vendor, 0) + 1
                state.peak_in_flight[vendor] = max(
                    state.peak_in_flight.get(vendor, 0), state.in_flight[vendor]
                )
            time.sleep(state.delay)
            with state.lock:
                state.in_flight[vendor] -= 1
                state.received.append(Received(vendor, path, query, headers, raw, answer))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:
            pass

    def _404() -> dict[str, Any]:
        raise Refused(404, {"error": "not found"})

    httpd = _Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
