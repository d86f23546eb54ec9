"""DPoP (RFC 9449): proofs of possession that make a leaked access token useless without its key.

A DPoP request carries ``Authorization: DPoP <token>`` and exactly one ``DPoP`` header: a JWT the
client signed, for this request, with the private key its token is bound to (the token's
``cnf.jkt`` is that key's RFC 7638 thumbprint). :class:`ProofVerifier` checks, in this order, every
rule of RFC 9449 section 4.3 (cheap checks first, the signature next, the shared replay store last):

- the proof is a compact JWS of at most :data:`MAX_PROOF_BYTES`, canonical base64url and strict
  JSON (:mod:`cobee_django.jose`);
- ``typ`` is ``dpop+jwt``; ``alg`` is asymmetric and in ``DPOP_ALGORITHMS`` (``none`` and HMAC are
  never accepted); no ``jku``/``x5u``/``x5c``/``crit`` header;
- ``jwk`` is a public key only (EC P-256/384/521, RSA of at least 2048 bits, Ed25519) matching
  ``alg``; a private member (``d``, ``p``, ...) refuses the proof;
- ``jti`` is a string, ``htm`` the request method, ``htu`` the request URL without query and
  fragment, both normalised as RFC 3986 section 6.2.2/6.2.3 says (:func:`normalize_htu`);
- ``iat`` is no older than ``DPOP_PROOF_MAX_AGE`` and no further in the future than ``LEEWAY``;
- ``ath`` is base64url(SHA-256(access token)); the token's ``cnf.jkt`` is the proof key's thumbprint;
- the nonce, when ``DPOP_NONCE_LIFETIME`` is set, is one this deployment issued (:class:`NonceSource`);
- the signature verifies with the ``jwk`` key;
- the ``jti`` was never seen inside its window, by any process sharing ``DPOP_REPLAY_CACHE_ALIAS``
  (one atomic ``cache.add``): see :meth:`ProofVerifier.check_replay`.

The URL compared with ``htu`` is the one the client used: scheme from ``request.scheme`` (Django's
``SECURE_PROXY_SSL_HEADER``), host from ``request.get_host()`` (``USE_X_FORWARDED_HOST``,
``USE_X_FORWARDED_PORT`` and ``ALLOWED_HOSTS``), path from ``request.path`` (``FORCE_SCRIPT_NAME``
or the server's ``SCRIPT_NAME``). Nothing else is guessed: a proxy that Django is not told about
makes every proof's ``htu`` differ, and the request is refused (see :func:`request_htu`).

Everything here is pure but for :meth:`ProofVerifier.check_replay` (the cache) and
:func:`request_htu` (reads the request): the request authenticator (:mod:`cobee_django.credentials`)
calls them and turns their errors into HTTP answers with :func:`challenge`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.core.cache import caches
from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.encoding import escape_uri_path

from . import bearer
from .conf import Settings, get_settings, is_reloading
from .exceptions import NonceRequired, ProofRejected, Reason, ReplayStoreUnavailable, TokenRejected
from .jose import MIN_RSA_BITS, b64url_decode, b64url_encode, loads_json

__all__: list[str] = []

Mode = Literal["disabled", "allowed", "required"]
#: ``DPOP_MODE`` values: no DPoP; Bearer and DPoP; DPoP only.
MODES: tuple[Mode, ...] = ("disabled", "allowed", "required")

#: Longest proof accepted (an RSA-4096 ``jwk`` makes a proof of about 1.2 KiB).
MAX_PROOF_BYTES = 8 * 1024
_MAX_JTI = 256
_MAX_NONCE = 256

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class _Alg(NamedTuple):
    kty: str
    curve: str | None  # the JWK ``crv`` an EC or OKP key must have
    hash: type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512] | None
    size: int  # EC: bytes per coordinate (and per signature half)


#: Proof algorithms this module can verify (``DPOP_ALGORITHMS`` picks among them). Symmetric
#: algorithms and ``none`` are not in it: a proof must be signed with a key only the client holds.
DPOP_ALGORITHMS: Mapping[str, _Alg] = {
    "ES256": _Alg("EC", "P-256", hashes.SHA256, 32),
    "ES384": _Alg("EC", "P-384", hashes.SHA384, 48),
    "ES512": _Alg("EC", "P-521", hashes.SHA512, 66),
    "RS256": _Alg("RSA", None, hashes.SHA256, 0),
    "RS384": _Alg("RSA", None, hashes.SHA384, 0),
    "RS512": _Alg("RSA", None, hashes.SHA512, 0),
    "PS256": _Alg("RSA", None, hashes.SHA256, 0),
    "PS384": _Alg("RSA", None, hashes.SHA384, 0),
    "PS512": _Alg("RSA", None, hashes.SHA512, 0),
    "EdDSA": _Alg("OKP", "Ed25519", None, 32),
    # RFC 9864's fully-specified name for the same signatures; newer clients send it instead of EdDSA.
    "Ed25519": _Alg("OKP", "Ed25519", None, 32),
}
_CURVES: Mapping[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
#: The members RFC 7638 hashes, per key type (also the only members a proof's ``jwk`` needs).
_THUMBPRINT_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Header parameters refused in a proof: keys by reference or chain, and processing changes.
_FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip"})
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_HEADER_CACHE_SIZE = 1024
# RFC 9449 section 7.1: NQCHAR for nonces; visible ASCII without the quote and backslash for jti.
_NQCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


# --- keys and thumbprints ------------------------------------------------------------------------------


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url (the ``cnf.jkt`` of a bound token).

    Raises ``KeyError`` for a key type or member missing; the values are hashed as given (keys that
    passed :func:`_proof_key` are canonical, so one key has one thumbprint).
    """
    members = _THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = "{" + ",".join(f'"{name}":"{jwk[name]}"' for name in members) + "}"
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(the ASCII access token)) (RFC 9449 section 4.2)."""
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class ProofKey:
    """A proof header that passed every rule: the algorithm, the public key and its thumbprint."""

    alg: str
    key: PublicKey
    jkt: str

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's ``alg`` signature of ``signing_input``."""
        spec = DPOP_ALGORITHMS[self.alg]
        try:
            if spec.kty == "EC":
                if len(signature) != 2 * spec.size:
                    return False
                assert isinstance(self.key, ec.EllipticCurvePublicKey) and spec.hash is not None
                r = int.from_bytes(signature[: spec.size], "big")
                s = int.from_bytes(signature[spec.size :], "big")
                self.key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(spec.hash()))
            elif spec.kty == "RSA":
                assert isinstance(self.key, rsa.RSAPublicKey) and spec.hash is not None
                pad: padding.AsymmetricPadding = (
                    padding.PKCS1v15()
                    if self.alg.startswith("RS")
                    else padding.PSS(mgf=padding.MGF1(spec.hash()), salt_length=spec.hash.digest_size)
                )
                self.key.verify(signature, signing_input, pad, spec.hash())
            else:
                assert isinstance(self.key, ed25519.Ed25519PublicKey)
                self.key.verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True


def _b64_member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if type(value) is not str or not value:
        raise ProofRejected(Reason.DPOP_BAD_KEY, f"jwk member {name} missing")
    return b64url_decode(value)


def _proof_key(alg: str, jwk: Any) -> ProofKey:
    """The public key of a proof's ``jwk`` header for ``alg``; raises :class:`ProofRejected`."""
    if type(jwk) is not dict:
        raise ProofRejected(Reason.DPOP_BAD_KEY, "jwk missing")
    if not _PRIVATE_MEMBERS.isdisjoint(jwk):
        # Threat: a client that publishes its private key has no proof of possession left to give.
        raise ProofRejected(Reason.DPOP_PRIVATE_KEY)
    spec = DPOP_ALGORITHMS[alg]
    if jwk.get("kty") != spec.kty:
        raise ProofRejected(Reason.DPOP_BAD_KEY, "kty does not match alg")
    if "alg" in jwk and jwk["alg"] != alg:
        raise ProofRejected(Reason.DPOP_BAD_KEY, "jwk alg differs from the header's")
    key: PublicKey
    try:
        if spec.kty == "EC":
            if jwk.get("crv") != spec.curve:
                raise ProofRejected(Reason.DPOP_BAD_KEY, "curve does not match alg")
            x, y = _b64_member(jwk, "x"), _b64_member(jwk, "y")
            if len(x) != spec.size or len(y) != spec.size:
                raise ProofRejected(Reason.DPOP_BAD_KEY, "coordinate length")
            # Raises ValueError for a point that is not on the curve (invalid-curve attacks).
            key = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), _CURVES[spec.curve or ""]()
            ).public_key()
        elif spec.kty == "RSA":
            modulus, exponent = _b64_member(jwk, "n"), _b64_member(jwk, "e")
            if modulus[0] == 0 or exponent[0] == 0:
                raise ProofRejected(Reason.DPOP_BAD_KEY, "leading zeros")
            n, e = int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")
            if n.bit_length() < MIN_RSA_BITS or e < 3 or e % 2 == 0:
                raise ProofRejected(Reason.DPOP_BAD_KEY, "weak RSA key")
            key = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            if jwk.get("crv") != spec.curve:
                raise ProofRejected(Reason.DPOP_BAD_KEY, "curve does not match alg")
            x = _b64_member(jwk, "x")
            if len(x) != spec.size:
                raise ProofRejected(Reason.DPOP_BAD_KEY, "key length")
            key = ed25519.Ed25519PublicKey.from_public_bytes(x)
    except ProofRejected:
        raise
    except Exception:  # cryptography's ValueError and friends on hostile numbers
        raise ProofRejected(Reason.DPOP_BAD_KEY, "not a valid public key") from None
    return ProofKey(alg=alg, key=key, jkt=jwk_thumbprint(jwk))


# --- URLs ----------------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%(?P<hex>[0-9A-Fa-f]{2})|%")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?:[?#].*)?", re.S)
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::(?P<port>[0-9]{0,5}))?")


def _percent(match: re.Match[str]) -> str:
    hex_digits = match.group("hex")
    if hex_digits is None:
        raise ValueError("a % not followed by two hex digits")
    char = chr(int(hex_digits, 16))
    return char if char in _UNRESERVED else "%" + hex_digits.upper()


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 section 5.2.4, on a path that starts with "/".
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


@functools.lru_cache(maxsize=1024)
def normalize_htu(url: str) -> str | None:
    """``url`` as RFC 9449 compares it: query and fragment dropped, then RFC 3986 normalisation.

    Scheme and host in lower case, the scheme's default port dropped, an empty path made ``/``,
    percent-escapes of unreserved characters decoded and the others upper-cased, dot segments
    removed. Only absolute ``http``/``https`` URLs without user information qualify; anything else
    (or any character outside visible ASCII) answers ``None``, which matches nothing. A client
    names the same few URLs in every proof, so answers are remembered (the 1024 most recent).
    """
    if not url.isascii() or not url.isprintable() or " " in url:
        return None
    match = _URL.fullmatch(url)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    authority = match["authority"]
    if scheme not in _DEFAULT_PORTS or "@" in authority:
        return None
    host_port = _HOST_PORT.fullmatch(authority)
    if host_port is None:
        return None
    try:
        host = _PERCENT.sub(_percent, host_port["host"]).lower()
        path = _PERCENT.sub(_percent, match["path"] or "/")
    except ValueError:
        return None
    if not host:
        return None
    port = host_port["port"]
    if port:
        if int(port) > 65535:
            return None
        if int(port) != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{int(port)}"
    if not path.startswith("/"):
        return None
    return f"{scheme}://{host}{_remove_dot_segments(path)}"


def request_htu(request: HttpRequest) -> str | None:
    """The normalised URL the client used for ``request`` (``None`` when Django refuses its host).

    Built from Django's own view of the request only: ``request.scheme`` (``SECURE_PROXY_SSL_HEADER``),
    ``request.get_host()`` (``USE_X_FORWARDED_HOST``, ``USE_X_FORWARDED_PORT``, ``ALLOWED_HOSTS``) and
    ``request.path`` (with the script prefix). ``X-Forwarded-*`` headers Django is not told to trust
    are ignored: a guess would let any client choose the URL its proofs are checked against.
    """
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    return normalize_htu(f"{request.scheme}://{host}{escape_uri_path(request.path)}")


# --- nonces --------------------------------------------------------------------------------------------


class NonceSource:
    """Server nonces (RFC 9449 section 8) that every process derives alike, with no shared state.

    A nonce is the HMAC (keyed by ``SECRET_KEY``) of the number of the current period of ``lifetime``
    seconds; the nonce of the current period and of the one before are accepted, so a nonce lives
    between one and two periods and rotates by itself.
    """

    def __init__(self, lifetime: float, secret: bytes) -> None:
        self.lifetime = lifetime
        self._secret = secret
        self._cache: dict[int, str] = {}

    def _for_period(self, period: int) -> str:
        nonce = self._cache.get(period)
        if nonce is None:
            digest = hmac.new(self._secret, struct.pack(">q", period), hashlib.sha256).digest()
            nonce = b64url_encode(digest[:18])
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[period] = nonce
        return nonce

    def current(self, now: float | None = None) -> str:
        """The nonce to hand out now."""
        return self._for_period(math.floor((time.time() if now is None else now) / self.lifetime))

    def is_valid(self, nonce: str, now: float | None = None) -> bool:
        """Whether ``nonce`` is the current period's or the previous one's."""
        period = math.floor((time.time() if now is None else now) / self.lifetime)
        return any(hmac.compare_digest(nonce, self._for_period(p)) for p in (period, period - 1))


# --- challenges ----------------------------------------------------------------------------------------

#: RFC 9449 section 7.1 error codes (``invalid_token`` is RFC 6750's).
INVALID_DPOP_PROOF = "invalid_dpop_proof"
USE_DPOP_NONCE = "use_dpop_nonce"
INVALID_DPOP_PROOF_DESCRIPTION = "The DPoP proof is invalid."
USE_DPOP_NONCE_DESCRIPTION = "Send the DPoP-Nonce value in the proof."


def challenge(
    algorithms: frozenset[str],
    realm: str | None = None,
    error: str | None = None,
    description: str | None = None,
) -> str:
    """A ``WWW-Authenticate`` value for the DPoP scheme (RFC 9449 section 7.1)."""
    parts = [f'realm="{realm or get_settings().realm}"', f'algs="{" ".join(sorted(algorithms))}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    return "DPoP " + ", ".join(parts)


# --- the verifier --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that passed every rule but the replay check: its key thumbprint, ``jti`` and ``iat``."""

    jkt: str
    jti: str
    iat: float


def _numeric_date(value: Any) -> float | None:
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return float(value)
    return None


class ProofVerifier:
    """Verifies DPoP proofs under one :class:`~cobee_django.conf.Settings`; rebuilt when they change.

    The header of a proof (``typ``, ``alg``, ``jwk``) is the same on every request of a client, so
    a checked header is remembered by its exact encoded bytes (at most 1024): a client's next proof
    skips decoding its key again. The signature, the claims and the replay check run on every proof.
    """

    def __init__(self, settings: Settings, secret: bytes) -> None:
        self.mode: Mode = settings.dpop_mode
        self.algorithms = settings.dpop_algorithms
        self.max_age = settings.dpop_proof_max_age
        self.leeway = settings.leeway
        self.required_clients = settings.dpop_required_clients
        self.replay_cache_alias = settings.dpop_replay_cache_alias
        self.fail_open = settings.dpop_replay_fail_open
        self.nonces = (
            NonceSource(settings.dpop_nonce_lifetime, secret) if settings.dpop_nonce_lifetime is not None else None
        )
        #: How long a ``jti`` is remembered: as long as a proof with that ``iat`` is accepted.
        self.replay_window = math.ceil(self.max_age + 2 * self.leeway) + 1
        self._headers: dict[bytes, ProofKey] = {}
        self._lock = threading.Lock()

    # Parsing and the header.

    def _header(self, segment: bytes) -> ProofKey:
        key = self._headers.get(segment)
        if key is not None:
            return key
        try:
            fields = loads_json(b64url_decode(segment), reason=Reason.DPOP_MALFORMED_PROOF)
        except ProofRejected:
            raise
        except Exception:  # TokenRejected from the strict decoders
            raise ProofRejected(Reason.DPOP_MALFORMED_PROOF, "header") from None
        typ = fields.get("typ")
        if type(typ) is not str or typ.lower() != "dpop+jwt":
            raise ProofRejected(Reason.DPOP_BAD_TYP)
        alg = fields.get("alg")
        if type(alg) is not str or alg not in self.algorithms or alg not in DPOP_ALGORITHMS:
            # Threat: "none" and HMAC would let anyone who saw the proof's key material forge proofs.
            raise ProofRejected(Reason.DPOP_ALG_NOT_ALLOWED)
        if not _FORBIDDEN_HEADERS.isdisjoint(fields):
            raise ProofRejected(Reason.DPOP_FORBIDDEN_HEADER)
        key = _proof_key(alg, fields.get("jwk"))
        with self._lock:
            if len(self._headers) >= _HEADER_CACHE_SIZE:
                self._headers.clear()
            self._headers[segment] = key
        return key

    def verify(
        self,
        proof: str,
        *,
        method: str,
        htu: str | None,
        access_token: str | None,
        jkt: str | None,
        now: float | None = None,
    ) -> Proof:
        """Check ``proof`` for a request (``method``, normalised ``htu``) presenting ``access_token``
        bound to the key thumbprint ``jkt``. Raises :class:`~cobee_django.exceptions.ProofRejected`
        (:class:`~cobee_django.exceptions.NonceRequired` for a missing or stale nonce). The replay
        check is separate: :meth:`check_replay`.

        ``access_token`` and ``jkt`` are ``None`` only for a token request (RFC 9449 section 5: an
        authorization server, such as the development issuer, binds the token it is about to issue
        to the proof's key); a resource server always passes both.
        """
        try:
            return self._verify(proof, method, htu, access_token, jkt, time.time() if now is None else now)
        except ProofRejected:
            raise
        except Exception as exc:
            # Whatever slipped past the rules on hostile input is still a bad proof, never a 500.
            raise ProofRejected(Reason.DPOP_MALFORMED_PROOF, type(exc).__name__) from None

    def _verify(
        self, proof: str, method: str, htu: str | None, access_token: str | None, jkt: str | None, now: float
    ) -> Proof:
        if len(proof) > MAX_PROOF_BYTES:
            raise ProofRejected(Reason.DPOP_MALFORMED_PROOF, "too large")
        if not proof.isascii():
            raise ProofRejected(Reason.DPOP_MALFORMED_PROOF, "non-ASCII")
        data = proof.encode("ascii")
        if data.translate(None, _ALPHABET) != b"..":
            raise ProofRejected(Reason.DPOP_MALFORMED_PROOF, "not three base64url segments")
        header_segment, payload_segment, signature_segment = data.split(b".")
        key = self._header(header_segment)
        try:
            claims = loads_json(b64url_decode(payload_segment), reason=Reason.DPOP_MALFORMED_PROOF)
            signature = b64url_decode(signature_segment)
        except ProofRejected:
            raise
        except Exception:
            raise ProofRejected(Reason.DPOP_MALFORMED_PROOF, "payload or signature") from None
        jti = claims.get("jti")
        if type(jti) is not str or not 0 < len(jti) <= _MAX_JTI or not jti.isprintable():
            raise ProofRejected(Reason.DPOP_BAD_CLAIM, "jti")
        if claims.get("htm") != method:
            raise ProofRejected(Reason.DPOP_HTM_MISMATCH)
        claimed_htu = claims.get("htu")
        if htu is None or type(claimed_htu) is not str or normalize_htu(claimed_htu) != htu:
            raise ProofRejected(Reason.DPOP_HTU_MISMATCH)
        iat = _numeric_date(claims.get("iat"))
        if iat is None:
            raise ProofRejected(Reason.DPOP_BAD_CLAIM, "iat")
        if iat > now + self.leeway:
            raise ProofRejected(Reason.DPOP_IAT_IN_FUTURE)
        if iat < now - self.max_age - self.leeway:
            raise ProofRejected(Reason.DPOP_IAT_TOO_OLD)
        if access_token is not None:
            ath = claims.get("ath")
            # Threat: without ath a proof captured with one token would vouch for another token.
            if type(ath) is not str or not hmac.compare_digest(ath, access_token_hash(access_token)):
                raise ProofRejected(Reason.DPOP_ATH_MISMATCH)
        # Threat: a stolen token presented with the thief's own key.
        if jkt is not None and not hmac.compare_digest(key.jkt, jkt):
            raise ProofRejected(Reason.DPOP_KEY_MISMATCH)
        if not key.verify(data[: len(header_segment) + 1 + len(payload_segment)], signature):
            raise ProofRejected(Reason.DPOP_BAD_SIGNATURE)
        if self.nonces is not None:
            nonce = claims.get("nonce")
            if type(nonce) is not str or len(nonce) > _MAX_NONCE or not self.nonces.is_valid(nonce, now):
                raise NonceRequired(Reason.DPOP_NONCE_REQUIRED, self.nonces.current(now))
        return Proof(jkt=key.jkt, jti=jti, iat=iat)

    def replay_key(self, proof: Proof) -> str:
        """The cache key of ``proof``'s ``jti`` (per key: one client cannot burn another's jti)."""
        # 128 bits of SHA-256, base64url: short keys cost less to check and send (Django validates every character).
        digest = b64url_encode(hashlib.sha256(f"{proof.jkt}\x00{proof.jti}".encode()).digest()[:16])
        return f"cobee_django:dpop:{digest}"

    def check_replay(self, proof: Proof) -> None:
        """Record ``proof``'s ``jti`` in the shared cache; raise if any process recorded it first.

        One atomic ``cache.add`` (Redis ``SET NX EX``): of two requests racing with the same proof,
        in one process or on two hosts, exactly one is accepted. When the cache cannot be reached,
        :class:`~cobee_django.exceptions.ReplayStoreUnavailable` (a 503) unless
        ``DPOP_REPLAY_FAIL_OPEN`` admits the proof unchecked.
        """
        try:
            added = caches[self.replay_cache_alias].add(self.replay_key(proof), 1, self.replay_window)
        except Exception as exc:
            if self.fail_open:
                return
            raise ReplayStoreUnavailable(type(exc).__name__) from None
        if not added:
            # Threat: a proof captured in transit (or from a log) replayed inside its iat window.
            raise ProofRejected(Reason.DPOP_REPLAY)


# --- one request -----------------------------------------------------------------------------------------

#: The ``Authorization`` scheme of DPoP-bound tokens (lower case, as the request authenticator names schemes).
DPOP = "dpop"
_NONCE_ATTR = "cobee_dpop_nonce"


def check_request(request: HttpRequest, scheme: str, token: str, claims: Mapping[str, Any], client_id: str) -> None:
    """The DPoP rules of one request whose access token (``token``, with verified ``claims``) came
    with the ``Authorization`` ``scheme`` (``"bearer"`` or ``"dpop"``).

    - a Bearer token is refused when it is DPoP-bound (``cnf.jkt``), when ``DPOP_MODE`` is
      ``required``, or when its client is in ``DPOP_REQUIRED_CLIENTS``;
    - a DPoP token must be bound, and come with exactly one ``DPoP`` header holding a valid proof
      for this request, never seen before.

    Raises ``TokenRejected`` (answer ``invalid_token``), ``ProofRejected`` (``invalid_dpop_proof``),
    ``NonceRequired`` (``use_dpop_nonce``) or ``ReplayStoreUnavailable`` (503).
    """
    verifier = _verifier or get_proof_verifier()
    cnf = claims.get("cnf")
    # ``cnf is None`` first: most tokens are unbound, and an ABC isinstance check costs per request.
    jkt = None if cnf is None else cnf.get("jkt") if isinstance(cnf, Mapping) else None
    if scheme != DPOP:
        # Threat: a DPoP-bound token leaked from a log, replayed as Bearer without the client's key.
        if jkt is not None:
            raise TokenRejected(Reason.BOUND_TOKEN_AS_BEARER)
        if verifier.mode == "required" or client_id in verifier.required_clients:
            raise TokenRejected(Reason.DPOP_REQUIRED)
        return
    if type(jkt) is not str:
        raise TokenRejected(Reason.TOKEN_NOT_DPOP_BOUND)
    proof = request.META.get("HTTP_DPOP")
    if not isinstance(proof, str) or not proof.strip(" \t"):
        raise ProofRejected(Reason.DPOP_MISSING_PROOF)
    if "," in proof:
        # Servers join repeated headers with commas; a compact JWS never holds one.
        raise ProofRejected(Reason.DPOP_MULTIPLE_PROOFS)
    method = request.method or ""
    checked = verifier.verify(proof.strip(" \t"), method=method, htu=request_htu(request), access_token=token, jkt=jkt)
    verifier.check_replay(checked)


def www_authenticate(
    realm: str | None = None, scheme: str | None = None, error: str | None = None, description: str | None = None
) -> str:
    """The ``WWW-Authenticate`` value of an answer: the Bearer challenge unless ``DPOP_MODE`` is
    ``required``, the DPoP challenge unless it is ``disabled``; ``error`` and ``description`` go on
    the challenge of ``scheme``, the scheme the request used (RFC 9449 section 7.1)."""
    verifier = get_proof_verifier()
    challenges = []
    if verifier.mode != "required":
        on_bearer = scheme != DPOP or verifier.mode == "disabled"
        challenges.append(bearer.challenge(realm, *((error, description) if on_bearer else (None, None))))
    if verifier.mode != "disabled":
        on_dpop = scheme == DPOP or verifier.mode == "required"
        challenges.append(challenge(verifier.algorithms, realm, *((error, description) if on_dpop else (None, None))))
    return ", ".join(challenges)


def remember_nonce(request: HttpRequest, nonce: str) -> None:
    """Note the nonce ``request``'s answer must carry in its ``DPoP-Nonce`` header."""
    setattr(request, _NONCE_ATTR, nonce)


def add_nonce_header(request: HttpRequest, response: HttpResponseBase) -> None:
    """Give ``response`` the ``DPoP-Nonce`` header :func:`remember_nonce` noted, if any."""
    nonce = getattr(request, _NONCE_ATTR, None)
    if isinstance(nonce, str) and not response.has_header("DPoP-Nonce"):
        response["DPoP-Nonce"] = nonce
        patch_vary_headers(response, ["DPoP"])


_verifier: ProofVerifier | None = None
_verifier_lock = threading.Lock()


def get_proof_verifier() -> ProofVerifier:
    """The process-wide proof verifier for the current settings."""
    global _verifier
    verifier = _verifier
    if verifier is None:
        from django.conf import settings as django_settings

        with _verifier_lock:
            if _verifier is None:
                settings = get_settings()
                # SECRET_KEY is read only when nonces are on (a project without DPoP needs none here).
                secret = (
                    hashlib.sha256(b"cobee_django.dpop.nonce" + str(django_settings.SECRET_KEY).encode()).digest()
                    if settings.dpop_nonce_lifetime is not None
                    else b""
                )
                _verifier = ProofVerifier(settings, secret)
            verifier = _verifier
    return verifier


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _verifier
    if is_reloading(setting) or setting == "SECRET_KEY":
        _verifier = None
