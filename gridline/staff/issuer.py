"""The local issuer of the embedded run: a signing key kept in the data directory, its public
JWKS, and the tokens `gridline staff token` mints with it.

A county with an identity provider sets `GRIDLINE_STAFF_OIDC_ISSUER` instead; then this key is
neither made nor trusted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gridline.staff.identity import Staff

# The `iss` of locally minted tokens.
LOCAL_ISSUER = "gridline-local"
ALGORITHM = "ES256"
# However long a mint is asked for, a local token never lives longer than a day.
MAX_TOKEN_MINUTES = 1440


def key_path(data_dir: Path) -> Path:
    """Where the local issuer's private key is kept."""
    return data_dir / "staff" / "issuer-key.pem"


class LocalIssuer:
    """The signing key in `data_dir`, made on first use by whichever process needs it first."""

    def __init__(self, data_dir: Path) -> None:
        self._path = key_path(data_dir)
        self._key = self._load_or_create()

    def _load_or_create(self) -> ec.EllipticCurvePrivateKey:
        if not self._path.exists():
            self._create()
        key = serialization.load_pem_private_key(self._path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self._path} holds no EC private key")
        return key

    def _create(self) -> None:
        # Four services and the CLI may start at once on one data directory: the key is written
        # whole under another name and linked into place, so the first link wins and every
        # process reads the same key.
        self._path.parent.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor, staged = tempfile.mkstemp(dir=self._path.parent, prefix=".issuer-key-")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            os.chmod(staged, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(staged, self._path)
        finally:
            os.unlink(staged)

    @property
    def key_id(self) -> str:
        """The key's RFC 7638 thumbprint."""
        public = self.public_jwk()
        canonical = json.dumps(
            {k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":")
        )
        digest = hashlib.sha256(canonical.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK (no key id)."""
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return jwk

    def jwks(self) -> dict[str, Any]:
        """The public JWKS the services trust when no external issuer is configured."""
        return {"keys": [{**self.public_jwk(), "kid": self.key_id, "alg": ALGORITHM, "use": "sig"}]}

    def mint(self, staff: Staff, *, audience: str, minutes: int, now: datetime) -> str:
        """A token naming `staff`, valid from `now` for `minutes` (at most MAX_TOKEN_MINUTES)."""
        if not 1 <= minutes <= MAX_TOKEN_MINUTES:
            raise ValueError(f"a token lives 1 to {MAX_TOKEN_MINUTES} minutes, not {minutes}")
        claims = {
            "iss": LOCAL_ISSUER,
            "aud": audience,
            "sub": staff.subject,
            "name": staff.name,
            "role": staff.role.value,
            "node_id": staff.node_id,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(minutes=minutes),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})
