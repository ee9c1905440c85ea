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

KEY_HEADER = "X-Gridline-Key"
TIMESTAMP_HEADER = "X-Gridline-Timestamp"
NONCE_HEADER = "X-Gridline-Nonce"
SIGNATURE_HEADER = "X-Gridline-Signature"
SIGNATURE_HEADERS = (KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)

# Clocks of integrators' servers drift; five minutes either way is accepted.
MAX_CLOCK_SKEW_SECONDS = 300
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class SignatureRefused(Exception):
    """A signed request that must be refused with 401; the message says why."""


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
        raise SignatureRefused(f"{TIMESTAMP_HEADER} must be Unix seconds")
    if abs(now - int(stamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRefused("timestamp is outside ±5 minutes of the server's clock")
    if not _NONCE.match(nonce):
        raise SignatureRefused(f"{NONCE_HEADER} must be 8-64 letters, digits, - or _")
    expected = sign(secret, method, path, stamp, nonce, body)
    # As bytes: compare_digest refuses text that is not ASCII, and a header may hold any.
    given = headers[SIGNATURE_HEADER].lower().encode()
    if not hmac.compare_digest(expected.encode(), given):
        raise SignatureRefused("signature does not match the request")
