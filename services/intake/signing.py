"""Integrator request signing: HMAC-SHA256 over method, path, timestamp, nonce and body hash.

Keys are derived, not stored: an API key's secret is HMAC-SHA256(server key secret, key id), so
intake keeps only the key id and a hash of the secret, and a copy of its tables gives nobody a
key. The client sends:

    X-Gridline-Key: <key id>
    X-Gridline-Timestamp: <Unix seconds>
    X-Gridline-Nonce: <8-64 letters, digits, - or _, never reused>
    X-Gridline-Signature: hex HMAC-SHA256(secret, METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nSHA256(body))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import textwrap
from typing import Any

KEY_HEADER = "X-Gridline-Key"
TIMESTAMP_HEADER = "X-Gridline-Timestamp"
NONCE_HEADER = "X-Gridline-Nonce"
SIGNATURE_HEADER = "X-Gridline-Signature"
SIGNATURE_HEADERS = (KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

# Clocks of integrators' servers drift; five minutes either way is accepted.
MAX_CLOCK_SKEW_SECONDS = 300
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class SignatureRefused(Exception):
    """A signed request that must be refused with 401: `rule` names why for programs (as the
    problem's `rule`), the message for people."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def key_secret(server_secret: str, key_id: str) -> str:
    """The secret of an API key, derived from the server's key secret and the key id."""
    digest = hmac.new(server_secret.encode(), key_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def secret_hash(secret: str) -> str:
    """The hash stored for a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What is signed: one line per part, the body by its SHA-256."""
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, body_hash)).encode()


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The hex signature of a request."""
    message = canonical(method, path, timestamp, nonce, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    key_id: str, secret: str, method: str, path: str, body: bytes, timestamp: int, nonce: str
) -> dict[str, str]:
    """The four headers of a signed request (what an integrator's client sends)."""
    stamp = str(timestamp)
    return {
        KEY_HEADER: key_id,
        TIMESTAMP_HEADER: stamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(secret, method, path, stamp, nonce, body),
    }


def check_signature(
    secret: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    now: float,
) -> None:
    """Raise SignatureRefused unless the timestamp is fresh and the signature matches."""
    stamp = headers[TIMESTAMP_HEADER]
    nonce = headers[NONCE_HEADER]
    # isascii: a header read as Latin-1 may hold `²`, a digit to isdigit but not to int.
    if not (stamp.isascii() and stamp.isdigit()):
        raise SignatureRefused(
            "signature.timestamp_format", f"{TIMESTAMP_HEADER} 须为 Unix 时间（秒），如 1767225600"
        )
    if abs(now - int(stamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRefused(
            "signature.timestamp_skew",
            f"{TIMESTAMP_HEADER} 与服务器时间相差超过±5分钟，请校准发送方的时钟",
        )
    if not _NONCE.match(nonce):
        raise SignatureRefused(
            "signature.nonce_format", f"{NONCE_HEADER} 须为8～64位字母、数字、- 或 _"
        )
    expected = sign(secret, method, path, stamp, nonce, body)
    # As bytes: compare_digest refuses text that is not ASCII, and a header may hold any.
    given = headers[SIGNATURE_HEADER].lower().encode()
    if not hmac.compare_digest(expected.encode(), given):
        raise SignatureRefused(
            "signature.mismatch",
            "签名与请求不符：请核对密钥，以及签名所用的方法、路径（含查询参数）、时间戳、随机数和"
            "请求体是否与实际发送的完全一致（常见原因：求哈希之后又重新序列化了请求体）",
        )


# An example request, its canonical string written out in the OpenAPI document by `canonical`.
_EXAMPLE = ("POST", "/v1/reports:batch?validate_only=true", "1767225600", "3f9c1b2a7d0e", b"{}")
_EXAMPLE_CANONICAL = textwrap.indent(canonical(*_EXAMPLE).decode(), "    ")

# The four headers as OpenAPI apiKey schemes (`in: header`), sent together: the routes that
# check them require all four as one requirement (services/intake/app.py).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "GridlineKey": {
        "type": "apiKey",
        "in": "header",
        "name": KEY_HEADER,
        "description": "The key id issued by `gridline integrators add` (`key_` and hex).",
    },
    "GridlineTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": TIMESTAMP_HEADER,
        "description": "The time of signing in Unix seconds; refused beyond ±5 minutes of "
        "the server's clock.",
    },
    "GridlineNonce": {
        "type": "apiKey",
        "in": "header",
        "name": NONCE_HEADER,
        "description": "8-64 letters, digits, `-` or `_`, new for every request: a nonce "
        "used before is refused.",
    },
    "GridlineSignature": {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": f"""\
Lower-case hex HMAC-SHA256 of the canonical string, keyed with the key's secret (its UTF-8
bytes, as issued). The canonical string is five lines joined by `\\n` (LF, no newline at the
end):

1. the method in upper case;
2. the path, with `?` and the query string exactly as sent when there is one (no scheme, no
   host);
3. the `{TIMESTAMP_HEADER}` value;
4. the `{NONCE_HEADER}` value;
5. the lower-case hex SHA-256 of the body's bytes exactly as sent (of no bytes for a GET).

For `{_EXAMPLE[0]} {_EXAMPLE[1]}` at {_EXAMPLE[2]} with nonce {_EXAMPLE[3]} and the
body `{_EXAMPLE[4].decode()}` it is:

{_EXAMPLE_CANONICAL}

Examples that run (curl + openssl, Python, Java): docs/integrators/README.md.""",
    },
}
