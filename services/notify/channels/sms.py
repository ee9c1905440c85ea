"""SMS as each vendor documents it: Alibaba Cloud SendSms, Tencent Cloud SendSms, a gateway."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import quote, urlsplit

from services.notify.channels.base import Outgoing, PermanentFailure
from services.notify.channels.http import HttpChannel, by_code, call_json
from services.notify.groups import AliyunSms, GatewaySms, TencentSms


def _phone(outgoing: Outgoing, channel: str) -> str:
    if not outgoing.phone:
        raise PermanentFailure(f"{channel}: group {outgoing.message.group_id} has no phone")
    return outgoing.phone


def percent_encode(value: str) -> str:
    """Alibaba Cloud's RFC 3986 encoding: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return quote(value, safe="-_.~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """RPC signature v1: HMAC-SHA1 with "secret&" over METHOD&%2F&encoded(sorted query)."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsChannel(HttpChannel):
    """Alibaba Cloud SMS `SendSms` (API 2017-05-25), template variables `kind` and `title`."""

    name = "sms-aliyun"
    idempotent = False
    TRANSIENT_CODES: ClassVar[set[object]] = {
        "isv.BUSINESS_LIMIT_CONTROL",
        "Throttling.User",
        "ServiceUnavailable",
        "InternalError",
    }

    def __init__(self, account: AliyunSms, base_url: str, timeout: float) -> None:
        self._account = account
        self._base = base_url.rstrip("/")
        super().__init__(timeout)

    def params(self, outgoing: Outgoing, now: datetime, nonce: str) -> dict[str, str]:
        """The signed request parameters."""
        params = {
            "AccessKeyId": self._account.access_key_id.get_secret_value(),
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": outgoing.message.notification_id,
            "PhoneNumbers": _phone(outgoing, self.name),
            "RegionId": "cn-hangzhou",
            "SignName": self._account.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "TemplateCode": self._account.template_code,
            "TemplateParam": json.dumps(outgoing.rendered.sms_params, ensure_ascii=False),
            "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        secret = self._account.access_key_secret.get_secret_value()
        return {**params, "Signature": aliyun_signature(params, secret)}

    async def send(self, outgoing: Outgoing) -> None:
        """POST the form to the endpoint root; Code "OK" is success."""
        params = self.params(outgoing, datetime.now(UTC), uuid.uuid4().hex)
        _, answer = await call_json(self._client, self.name, "POST", f"{self._base}/", data=params)
        if answer.get("Code") != "OK":
            raise by_code(
                self.name, answer.get("Code"), answer.get("Message"), self.TRANSIENT_CODES
            )


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_authorization(
    *, secret_id: str, secret_key: str, host: str, payload: bytes, timestamp: int, service: str
) -> str:
    """Tencent Cloud API v3 (TC3-HMAC-SHA256) `Authorization` for a JSON POST to `/`."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical_request = (
        "POST\n/\n\n"
        f"content-type:application/json; charset=utf-8\nhost:{host}\n\n"
        f"content-type;host\n{_sha256_hex(payload)}"
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{_sha256_hex(canonical_request.encode())}"
    )
    key = _hmac256(f"TC3{secret_key}".encode(), date)
    key = _hmac256(key, service)
    key = _hmac256(key, "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


class TencentSmsChannel(HttpChannel):
    """Tencent Cloud SMS `SendSms` (2021-01-11), template parameters [kind, title]."""

    name = "sms-tencent"
    idempotent = False
    TRANSIENT_PREFIXES = ("RequestLimitExceeded", "LimitExceeded", "InternalError")

    def __init__(self, account: TencentSms, base_url: str, timeout: float) -> None:
        self._account = account
        self._base = base_url.rstrip("/")
        self._host = urlsplit(self._base).netloc
        super().__init__(timeout)

    def body(self, outgoing: Outgoing) -> dict[str, object]:
        """The JSON body SendSms takes (E.164 numbers)."""
        phone = _phone(outgoing, self.name)
        return {
            "PhoneNumberSet": [phone if phone.startswith("+") else f"+86{phone}"],
            "SmsSdkAppId": self._account.sdk_app_id,
            "SignName": self._account.sign_name,
            "TemplateId": self._account.template_id,
            "TemplateParamSet": [
                outgoing.rendered.sms_params["kind"],
                outgoing.rendered.sms_params["title"],
            ],
            "SessionContext": outgoing.message.notification_id,
        }

    def _failure(self, code: str, message: str) -> Exception:
        transient = {code} if code.startswith(self.TRANSIENT_PREFIXES) else set()
        return by_code(self.name, code, message, transient)

    async def send(self, outgoing: Outgoing) -> None:
        """POST signed JSON; every SendStatusSet entry must have Code "Ok"."""
        payload = json.dumps(self.body(outgoing), ensure_ascii=False).encode()
        stamp = int(datetime.now(UTC).timestamp())
        headers = {
            "Authorization": tc3_authorization(
                secret_id=self._account.secret_id.get_secret_value(),
                secret_key=self._account.secret_key.get_secret_value(),
                host=self._host,
                payload=payload,
                timestamp=stamp,
                service="sms",
            ),
            "Content-Type": "application/json; charset=utf-8",
            "Host": self._host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(stamp),
            "X-TC-Region": self._account.region,
        }
        _, answer = await call_json(
            self._client, self.name, "POST", f"{self._base}/", content=payload, headers=headers
        )
        response = answer.get("Response", {})
        if "Error" in response:
            error = response["Error"]
            raise self._failure(str(error.get("Code")), str(error.get("Message")))
        statuses = response.get("SendStatusSet") or []
        if not statuses:
            raise PermanentFailure(f"{self.name}: answer without SendStatusSet")
        for status in statuses:
            if status.get("Code") != "Ok":
                raise self._failure(str(status.get("Code")), str(status.get("Message")))


class GatewaySmsChannel(HttpChannel):
    """A generic HTTP SMS gateway: JSON {phone, text, id}, bearer token, Idempotency-Key."""

    name = "sms-gateway"
    idempotent = True

    def __init__(self, account: GatewaySms, timeout: float) -> None:
        self._account = account
        super().__init__(timeout)

    async def send(self, outgoing: Outgoing) -> None:
        """POST once; any 2xx is success."""
        status, answer = await call_json(
            self._client,
            self.name,
            "POST",
            self._account.url,
            json={
                "phone": _phone(outgoing, self.name),
                "text": outgoing.rendered.sms_text,
                "id": outgoing.message.notification_id,
            },
            headers={
                "Authorization": f"Bearer {self._account.token.get_secret_value()}",
                "Idempotency-Key": outgoing.message.notification_id,
            },
        )
        if status >= 300:
            raise PermanentFailure(f"{self.name}: HTTP {status}: {str(answer)[:200]}")
