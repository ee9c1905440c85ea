#!/usr/bin/env python3
"""Post a JSON file to Gridline intake, signed with an integrator key (standard library only).

    GRIDLINE_KEY_ID=key_... GRIDLINE_KEY_SECRET=... python3 sign.py report.json [PATH]

PATH is the path to post to, with its query string if any (default /v1/reports; also
/v1/reports:batch, and either with ?validate_only=true). GRIDLINE_INTAKE_URL is intake's address
(default http://127.0.0.1:8001). Prints intake's answer, then `HTTP <status>`; exits 1 unless
the status is 2xx. The walk-through is docs/integrators/README.md.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
import time
import urllib.error
import urllib.request


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What is signed: five lines joined by LF, no LF at the end; the body by its SHA-256."""
    body_sha256 = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, nonce, body_sha256]).encode()


def signed_headers(key_id: str, secret: str, method: str, path: str, body: bytes) -> dict[str, str]:
    """The four X-Gridline-* headers of one request, with the time now and a new nonce."""
    timestamp = str(int(time.time()))
    # 32 hex digits: within the 8-64 letters, digits, - or _ intake accepts, and never repeated.
    nonce = secrets.token_hex(16)
    message = canonical(method, path, timestamp, nonce, body)
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {
        "X-Gridline-Key": key_id,
        "X-Gridline-Timestamp": timestamp,
        "X-Gridline-Nonce": nonce,
        "X-Gridline-Signature": signature,
    }


def main(argv: list[str]) -> int:
    """Post the file named in `argv`; 0 when intake answered 2xx."""
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__ or "")
        return 2
    path = argv[2] if len(argv) == 3 else "/v1/reports"
    url = os.environ.get("GRIDLINE_INTAKE_URL", "http://127.0.0.1:8001")
    with open(argv[1], "rb") as file:
        # The bytes signed are the bytes sent: never re-serialise the JSON in between.
        body = file.read()
    headers = signed_headers(
        os.environ["GRIDLINE_KEY_ID"], os.environ["GRIDLINE_KEY_SECRET"], "POST", path, body
    )
    request = urllib.request.Request(
        url + path,
        data=body,
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:  # 4xx and 5xx carry an answer worth reading
        status, answer = error.code, error.read()
    sys.stdout.write(f"{answer.decode()}\nHTTP {status}\n")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
