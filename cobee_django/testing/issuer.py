"""A token issuer for tests and development: its own RSA key pair, Auth0-shaped access tokens."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from josepy.jwk import JWKRSA

from ..jose import ALGORITHMS, b64url_encode

__all__: list[str] = []

#: Pass as a claim override (or a header value) to leave that claim (or header parameter) out.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

DEFAULT_METADATA_CLAIM = "https://auth.cobee.io/metadata"
DEFAULT_LIFETIME = 86400


class TokenIssuer:
    """Issues RS256 access tokens shaped like Auth0's machine-to-machine tokens.

    ``TokenIssuer(issuer="https://tenant.example/", audience="https://api.example")`` generates an
    RSA-2048 key pair; pass ``key`` (a cryptography private key) to reuse one, and ``kid`` to name it
    (default: the key's RFC 7638 thumbprint, so a persisted key keeps its kid). Make the app trust it
    by serving :meth:`jwks` (see :class:`~cobee_django.testing.JWKSServer`) or by installing it with
    :func:`cobee_django.testing.install_key_set`.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
        client_id: str = "test-client",
        metadata_claim: str = DEFAULT_METADATA_CLAIM,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.key = key if key is not None else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.algorithm = algorithm
        self.client_id = client_id
        self.metadata_claim = metadata_claim
        self._jwk = JWKRSA(key=self.key.public_key())
        self.kid = kid if kid is not None else self._jwk.thumbprint().hex()[:32]

    @classmethod
    def from_pem(cls, pem: bytes | str, **kwargs: Any) -> TokenIssuer:
        """An issuer using a PEM (PKCS#8, unencrypted) private key saved by :meth:`private_key_pem`."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("TokenIssuer.from_pem needs an RSA private key")
        return cls(key=key, **kwargs)

    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, to persist a development issuer's key (never commit it)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with ``kid``, ``use`` and ``alg``."""
        jwk: dict[str, Any] = self._jwk.to_json()
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def jwks(self) -> dict[str, Any]:
        """The JWK set to publish at the issuer's ``jwks_uri``."""
        return {"keys": [self.public_jwk]}

    def claims(
        self,
        company_id: uuid.UUID | str | None,
        corporation_id: uuid.UUID | str | None = None,
        scopes: Iterable[str] = (),
        client_id: str | None = None,
        lifetime: float = DEFAULT_LIFETIME,
        **claim_overrides: Any,
    ) -> dict[str, Any]:
        """The claims :meth:`make_token` signs (Auth0's M2M claims plus the metadata claim)."""
        client = client_id if client_id is not None else self.client_id
        now = int(time.time())
        metadata: dict[str, Any] = {}
        if company_id is not None:
            metadata["companyId"] = str(company_id)
        if corporation_id is not None:
            metadata["corporationId"] = str(corporation_id)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": f"{client}@clients",
            "aud": self.audience,
            "iat": now,
            "exp": int(now + lifetime),
            "scope": " ".join(scopes),
            "gty": "client-credentials",
            "azp": client,
            self.metadata_claim: metadata,
        }
        claims.update(claim_overrides)
        return {name: value for name, value in claims.items() if value is not MISSING}

    def make_token(
        self,
        company_id: uuid.UUID | str | None,
        corporation_id: uuid.UUID | str | None = None,
        scopes: Iterable[str] = (),
        client_id: str | None = None,
        lifetime: float = DEFAULT_LIFETIME,
        headers: Mapping[str, Any] | None = None,
        **claim_overrides: Any,
    ) -> str:
        """A signed access token for ``company_id`` (and ``corporation_id``) with ``scopes``.

        Claim overrides replace claims by name (``exp=0``); pass :data:`MISSING` to drop one. Names
        that are not identifiers go through a dict: ``**{"https://auth.cobee.io/metadata": {...}}``.
        ``headers`` are merged into the JOSE header the same way.
        """
        claims = self.claims(company_id, corporation_id, scopes, client_id, lifetime, **claim_overrides)
        header = {**self.default_header(), **(headers or {})}
        return self.sign(claims, {name: value for name, value in header.items() if value is not MISSING})

    def default_header(self) -> dict[str, Any]:
        return {"alg": self.algorithm, "typ": "JWT", "kid": self.kid}

    def sign(self, claims: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
        """Sign arbitrary ``claims`` under ``header`` (default :meth:`default_header`), as given.

        The signature uses the header's ``alg`` when it is an RSA algorithm, else the issuer's own:
        a test can claim ``"alg": "none"`` and still get a (useless) RSA signature.
        """
        header = dict(header) if header is not None else self.default_header()
        return self.sign_segments(
            b64url_encode(json.dumps(header, separators=(",", ":")).encode()),
            b64url_encode(json.dumps(claims, separators=(",", ":")).encode()),
            algorithm=header.get("alg") if isinstance(header.get("alg"), str) else None,
        )

    def sign_segments(self, header_segment: str, payload_segment: str, algorithm: str | None = None) -> str:
        """Sign two already encoded segments exactly as given (to craft non-canonical encodings)."""
        alg = algorithm if algorithm is not None and algorithm in ALGORITHMS else self.algorithm
        signing_input = f"{header_segment}.{payload_segment}"
        signature = ALGORITHMS[alg].sign(self.key, signing_input.encode("latin-1"))
        return f"{signing_input}.{b64url_encode(signature)}"

    def bearer(self, company_id: uuid.UUID | str | None, **kwargs: Any) -> str:
        """``"Bearer <token>"`` for :meth:`make_token` with the same arguments."""
        return f"Bearer {self.make_token(company_id, **kwargs)}"

    def __repr__(self) -> str:
        return f"TokenIssuer(issuer={self.issuer!r}, kid={self.kid!r})"


def random_client_id() -> str:
    """A random client id shaped like Auth0's (32 letters and digits)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(32))
