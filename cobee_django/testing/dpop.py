"""DPoP for tests and demos: a client key pair that makes proofs (RFC 9449) and binds tokens to itself."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..dpop import access_token_hash, jwk_thumbprint
from ..jose import b64url_encode
from .issuer import MISSING, TokenIssuer

__all__: list[str] = []

_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES = {
    "ES256": (ec.SECP256R1, "P-256", 32),
    "ES384": (ec.SECP384R1, "P-384", 48),
    "ES512": (ec.SECP521R1, "P-521", 66),
}


def _int_b64(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


class DPoPKey:
    """A DPoP client's key pair: ``DPoPKey()`` is ES256; ``DPoPKey("RS256")``, ``"PS256"``, ``"EdDSA"``...

    ``"Ed25519"`` signs as ``"EdDSA"`` does, under RFC 9864's name.
    :meth:`proof` signs a proof for one request; :meth:`bind` asks a
    :class:`~cobee_django.testing.TokenIssuer` for a token bound to this key (``cnf.jkt``);
    :meth:`headers` gives both request headers at once::

        key = DPoPKey()
        token = key.bind(issuer, company_id, scopes=["read:employees"])
        client.get(url, headers=key.headers("GET", "http://testserver" + url, token))
    """

    def __init__(self, algorithm: str = "ES256", key: Any = None) -> None:
        self.algorithm = algorithm
        if key is not None:
            self.key = key
        elif algorithm in _CURVES:
            self.key = ec.generate_private_key(_CURVES[algorithm][0]())
        elif algorithm in ("EdDSA", "Ed25519"):
            self.key = ed25519.Ed25519PrivateKey.generate()
        elif algorithm[:2] in ("RS", "PS"):
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(f"DPoPKey cannot sign with {algorithm!r}")

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (the proof's ``jwk`` header)."""
        public = self.key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            _, crv, size = _CURVES[self.algorithm]
            return {"kty": "EC", "crv": crv, "x": _int_b64(numbers.x, size), "y": _int_b64(numbers.y, size)}
        if isinstance(public, rsa.RSAPublicKey):
            rsa_numbers = public.public_numbers()
            return {"kty": "RSA", "n": _int_b64(rsa_numbers.n), "e": _int_b64(rsa_numbers.e)}
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}

    @property
    def jkt(self) -> str:
        """The key's RFC 7638 thumbprint: the ``cnf.jkt`` of tokens bound to it."""
        return jwk_thumbprint(self.public_jwk)

    def sign(self, signing_input: bytes) -> bytes:
        """This key's raw JWS signature of ``signing_input`` (``r || s`` for ECDSA)."""
        alg = self.algorithm
        if alg in _CURVES:
            r, s = decode_dss_signature(self.key.sign(signing_input, ec.ECDSA(_HASHES[alg[2:]]())))
            size = _CURVES[alg][2]
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg in ("EdDSA", "Ed25519"):
            signature: bytes = self.key.sign(signing_input)
            return signature
        digest = _HASHES[alg[2:]]
        pad = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(mgf=padding.MGF1(digest()), salt_length=digest.digest_size)
        )
        signature = self.key.sign(signing_input, pad, digest())
        return signature

    def proof(
        self,
        method: str,
        url: str,
        access_token: str | None = None,
        *,
        nonce: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        headers: Mapping[str, Any] | None = None,
        **claim_overrides: Any,
    ) -> str:
        """A signed proof for ``method`` ``url`` (``ath`` of ``access_token`` when given).

        ``headers`` and claim overrides replace header parameters and claims by name; :data:`MISSING`
        (from :mod:`cobee_django.testing`) leaves one out, so tests can craft every bad proof.
        """
        header: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self.public_jwk, **(headers or {})}
        claims: dict[str, Any] = {
            "jti": jti if jti is not None else secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(claim_overrides)
        header = {name: value for name, value in header.items() if value is not MISSING}
        claims = {name: value for name, value in claims.items() if value is not MISSING}
        signing_input = (
            b64url_encode(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
        )
        return f"{signing_input}.{b64url_encode(self.sign(signing_input.encode('ascii')))}"

    def bind(self, issuer: TokenIssuer, company_id: uuid.UUID | str | None, **kwargs: Any) -> str:
        """``issuer.make_token(company_id, **kwargs)`` bound to this key (``cnf: {"jkt": ...}``)."""
        return issuer.make_token(company_id, cnf={"jkt": self.jkt}, **kwargs)

    def headers(self, method: str, url: str, token: str, **proof_kwargs: Any) -> dict[str, str]:
        """``Authorization: DPoP <token>`` and a fresh ``DPoP`` proof, for a test client's ``headers=``."""
        return {"Authorization": f"DPoP {token}", "DPoP": self.proof(method, url, token, **proof_kwargs)}

    def __repr__(self) -> str:
        return f"DPoPKey({self.algorithm!r}, jkt={self.jkt!r})"
