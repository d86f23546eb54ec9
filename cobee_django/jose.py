"""Strict compact JWS: parsing, header rules and pinned-algorithm RSA verification with josepy.

josepy is used as a signature layer only (see the security docs): its own ``JWS.from_compact`` accepts
non-canonical base64, lets the token's header choose the algorithm and will verify with a key the
token embeds. This module closes those holes:

- base64url is decoded strictly: the URL-safe alphabet only, no padding, no whitespace or junk, and
  the unused trailing bits must be zero, so one token has exactly one spelling;
- JSON is decoded strictly: UTF-8 without BOM, no duplicate keys, no NaN/Infinity, an object at the
  top level, bounded nesting;
- the algorithm is pinned by configuration; ``none``, HMAC and anything not allowed is refused before
  any key is looked at, and in-band key headers (``jwk``, ``jku``, ``x5u``, ``x5c``) and ``crit`` are
  refused outright;
- keys only come from JWKS entries that pass :func:`key_from_jwk` (RSA, at least 2048 bits);
- RSASSA-PSS (PS256/384/512) uses the salt length RFC 7518 section 3.5 names, the digest's length,
  where josepy would accept any (:class:`RSAPSS`).
"""

from __future__ import annotations

import binascii
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.scanner import make_scanner
from typing import Any, NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from josepy import jwa
from josepy.jwk import JWKRSA

from .exceptions import Reason, TokenRejected, UnusableKey

__all__: list[str] = []


class SignatureAlgorithm(Protocol):
    """One JWS signature algorithm: josepy's ``JWASignature`` interface, all the verifier uses."""

    name: str

    def sign(self, key: Any, msg: bytes) -> bytes: ...

    def verify(self, key: Any, msg: bytes, sig: bytes) -> bool: ...


class RSAPSS:
    """RSASSA-PSS with MGF1 and a salt exactly as long as the digest (RFC 7518 section 3.5).

    josepy's PS256/384/512 sign with the longest salt the key allows and verify with any salt length;
    RFC 7518 names one length, so a signature made with another is refused (one token, one valid
    signature scheme: nothing an issuer following the RFC would produce is ever accepted).
    """

    def __init__(self, name: str, hash_type: type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]) -> None:
        self.name = name
        self.hash_type = hash_type

    def _padding(self) -> padding.PSS:
        return padding.PSS(mgf=padding.MGF1(self.hash_type()), salt_length=self.hash_type.digest_size)

    def sign(self, key: rsa.RSAPrivateKey, msg: bytes) -> bytes:
        """Sign ``msg`` with ``key``."""
        return key.sign(msg, self._padding(), self.hash_type())

    def verify(self, key: rsa.RSAPublicKey, msg: bytes, sig: bytes) -> bool:
        """True when ``sig`` is ``key``'s signature of ``msg`` with the digest-length salt."""
        try:
            key.verify(sig, msg, self._padding(), self.hash_type())
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return self.name


class _DropSignatureTracebacks(logging.Filter):
    """Drops josepy's DEBUG traceback for a signature that does not verify.

    josepy logs every ``InvalidSignature`` with ``exc_info``; a forged token is an ordinary event,
    already recorded once (``bad_signature``) without a traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InvalidSignature)


_josepy_filter = _DropSignatureTracebacks()
logging.getLogger("josepy.jwa").addFilter(_josepy_filter)


#: The algorithm object for each algorithm the verifier can pin: josepy's for RSASSA-PKCS1-v1_5,
#: :class:`RSAPSS` for RSASSA-PSS.
ALGORITHMS: Mapping[str, SignatureAlgorithm] = {
    "RS256": jwa.RS256,
    "RS384": jwa.RS384,
    "RS512": jwa.RS512,
    "PS256": RSAPSS("PS256", hashes.SHA256),
    "PS384": RSAPSS("PS384", hashes.SHA384),
    "PS512": RSAPSS("PS512", hashes.SHA512),
}

#: Deepest JSON nesting accepted in a token or a key set (real ones nest two or three levels).
MAX_JSON_DEPTH = 16
#: RSA moduli below this size are refused (RFC 7518 section 3.3).
MIN_RSA_BITS = 2048
#: Longest ``kid`` accepted; real ones are short fingerprints.
MAX_KID_LENGTH = 256
#: ``typ`` values accepted (compared case-insensitively, as media types are).
ALLOWED_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
#: Header parameters that would let the token choose its own key or change the processing rules.
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip"})
_EMBEDDED_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c"})

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_FROM_STANDARD = bytes.maketrans(b"+/", b"-_")
# The last character of a segment whose length is 2 (or 3) modulo 4 carries 4 (or 2) unused bits; a
# canonical encoding leaves them zero, so only these characters may end such a segment.
_LAST_OF_2 = frozenset(b"AQgw")
_LAST_OF_3 = frozenset(b"AEIMQUYcgkosw048")
_HEADER_CACHE_SIZE = 256


def b64url_encode(data: bytes) -> str:
    """Canonical base64url without padding (RFC 7515 section 2)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_FROM_STANDARD).decode("ascii")


def _decode_segment(segment: bytes) -> bytes:
    # The caller has checked that ``segment`` holds only base64url characters.
    rest = len(segment) & 3
    if rest:
        if rest == 1 or segment[-1] not in (_LAST_OF_2 if rest == 2 else _LAST_OF_3):
            raise TokenRejected(Reason.BAD_ENCODING, "non-canonical base64url")
        segment += b"==" if rest == 2 else b"="
    return binascii.a2b_base64(segment.translate(_TO_STANDARD))


def b64url_decode(segment: str | bytes) -> bytes:
    """Decode canonical base64url only; anything else raises :class:`TokenRejected` (``bad_encoding``)."""
    if isinstance(segment, str):
        if not segment.isascii():
            raise TokenRejected(Reason.BAD_ENCODING, "non-ASCII base64url")
        segment = segment.encode("ascii")
    if segment.translate(None, _ALPHABET):
        raise TokenRejected(Reason.BAD_ENCODING, "character outside base64url")
    return _decode_segment(segment)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # Two parsers may keep different duplicates; the claim we check must be the claim others see.
        raise ValueError("duplicate key")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_no_constant, parse_float=_finite_float)
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(_DECODER)  # type: ignore[arg-type]  # typeshed's stub
_JSON_WHITESPACE = " \t\n\r"  # RFC 8259 section 2
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _depth(text: str) -> int:
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text):
        char = match.group()
        if char == "[" or char == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif char == "]" or char == "}":
            depth -= 1
    return deepest


def loads_json(data: bytes, *, reason: Reason = Reason.BAD_JSON, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """Decode a strict JSON object from UTF-8 ``data``; anything else raises :class:`TokenRejected`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenRejected(reason, "not UTF-8") from None
    if text[:1] == "\ufeff":
        raise TokenRejected(reason, "byte order mark")
    # Counting brackets is cheap; the exact depth is computed only when the count could exceed the bound.
    if text.count("{") + text.count("[") > max_depth and _depth(text) > max_depth:
        raise TokenRejected(reason, "nested too deeply")
    # The decoder's scanner, called directly: JSONDecoder.decode adds two Python frames and a regex
    # per document. JSON's own whitespace may surround the value; anything else after it is refused.
    stripped = text.strip(_JSON_WHITESPACE)
    try:
        value, end = _SCAN(stripped, 0)
    except (ValueError, RecursionError, StopIteration):
        raise TokenRejected(reason, "invalid JSON") from None
    if end != len(stripped):
        raise TokenRejected(reason, "invalid JSON")
    if type(value) is not dict:
        raise TokenRejected(reason, "not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class Header:
    """A JOSE header that passed every rule: pinned ``alg``, a ``kid``, no in-band keys."""

    alg: str
    kid: str
    algorithm: SignatureAlgorithm
    fields: Mapping[str, Any]


class CompactJWS(NamedTuple):
    """The parts of a strictly parsed compact JWS; the signature is not checked yet."""

    header: Header
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def check_header(fields: dict[str, Any], algorithms: frozenset[str]) -> Header:
    """Apply the header rules to a decoded JOSE header (see the module docstring)."""
    alg = fields.get("alg")
    if type(alg) is not str or alg not in algorithms or alg not in ALGORITHMS:
        raise TokenRejected(Reason.ALG_NOT_ALLOWED)
    if not FORBIDDEN_HEADERS.isdisjoint(fields):
        if not _EMBEDDED_KEY_HEADERS.isdisjoint(fields):
            raise TokenRejected(Reason.EMBEDDED_KEY)
        raise TokenRejected(Reason.FORBIDDEN_HEADER)
    typ = fields.get("typ")
    if (typ is not None or "typ" in fields) and (type(typ) is not str or typ.lower() not in ALLOWED_TYPES):
        raise TokenRejected(Reason.BAD_TYP)
    kid = fields.get("kid")
    if type(kid) is not str or not kid or len(kid) > MAX_KID_LENGTH:
        raise TokenRejected(Reason.MISSING_KID)
    return Header(alg=alg, kid=kid, algorithm=ALGORITHMS[alg], fields=fields)


class CompactParser:
    """Parses compact JWS strings under fixed rules (allowed algorithms, size cap).

    Headers are few (one per signing key), so a validated header is remembered by its exact encoded
    bytes: the next token with the same header skips decoding and checking it again.
    """

    def __init__(self, algorithms: frozenset[str], max_bytes: int) -> None:
        self.algorithms = algorithms
        self.max_bytes = max_bytes
        self._headers: dict[bytes, Header] = {}

    def parse(self, token: str) -> CompactJWS:
        """Split and decode ``token``; raises :class:`TokenRejected` on any deviation."""
        if len(token) > self.max_bytes:
            raise TokenRejected(Reason.TOO_LARGE)
        if not token.isascii():
            raise TokenRejected(Reason.MALFORMED_TOKEN, "non-ASCII")
        data = token.encode("ascii")
        # Exactly three segments of base64url characters: deleting the alphabet must leave two dots.
        if data.translate(None, _ALPHABET) != b"..":
            raise TokenRejected(Reason.MALFORMED_TOKEN, "not three base64url segments")
        header_segment, payload_segment, signature_segment = data.split(b".")
        header = self._headers.get(header_segment)
        if header is None:
            header = self._parse_header(header_segment)
        payload = loads_json(_decode_segment(payload_segment))
        signature = _decode_segment(signature_segment)
        signing_input = data[: len(header_segment) + 1 + len(payload_segment)]
        return CompactJWS(header, payload, signing_input, signature)

    def _parse_header(self, segment: bytes) -> Header:
        header = check_header(loads_json(_decode_segment(segment)), self.algorithms)
        if len(self._headers) >= _HEADER_CACHE_SIZE:
            self._headers.clear()
        self._headers[segment] = header
        return header


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A trusted RSA public key from a JWKS entry, built once and reused for every token."""

    kid: str
    alg: str | None
    jwk: JWKRSA
    public_key: rsa.RSAPublicKey
    bits: int

    def verify(self, token: CompactJWS) -> None:
        """Check ``token``'s signature with the header's (already pinned) algorithm, or raise."""
        if self.alg is not None and self.alg != token.header.alg:
            # A key published for one algorithm must not verify another (RFC 7517 section 4.4).
            raise TokenRejected(Reason.KEY_ALG_MISMATCH)
        if not token.header.algorithm.verify(self.public_key, token.signing_input, token.signature):
            raise TokenRejected(Reason.BAD_SIGNATURE)


_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def key_from_jwk(entry: Any, algorithms: frozenset[str]) -> VerificationKey:
    """Build a :class:`VerificationKey` from one JWKS entry, or raise :class:`UnusableKey`.

    Only public RSA signature keys of at least 2048 bits with a ``kid`` qualify: ``use`` absent or
    ``sig``, ``key_ops`` absent or containing ``verify``, ``alg`` absent or allowed.
    """
    if not isinstance(entry, dict):
        raise UnusableKey("entry is not an object")
    if entry.get("kty") != "RSA":
        raise UnusableKey("kty is not RSA")
    kid = entry.get("kid")
    if type(kid) is not str or not kid or len(kid) > MAX_KID_LENGTH:
        raise UnusableKey("missing kid")
    if entry.get("use", "sig") != "sig":
        raise UnusableKey("use is not sig")
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise UnusableKey("key_ops does not allow verify")
    alg = entry.get("alg")
    if alg is not None and (type(alg) is not str or alg not in algorithms or alg not in ALGORITHMS):
        raise UnusableKey("alg not allowed")
    if not _PRIVATE_MEMBERS.isdisjoint(entry):
        # A published private key is compromised by definition; never trust it.
        raise UnusableKey("entry holds private key material")
    n, e = entry.get("n"), entry.get("e")
    if type(n) is not str or type(e) is not str:
        raise UnusableKey("n and e must be strings")
    try:
        modulus = b64url_decode(n)
        exponent = int.from_bytes(b64url_decode(e), "big")
    except TokenRejected:
        raise UnusableKey("n or e is not canonical base64url") from None
    if not modulus or modulus[0] == 0:
        raise UnusableKey("n has leading zeros")
    bits = int.from_bytes(modulus, "big").bit_length()
    if bits < MIN_RSA_BITS:
        raise UnusableKey("modulus shorter than 2048 bits")
    if exponent < 3 or exponent % 2 == 0:
        raise UnusableKey("bad public exponent")
    try:
        jwk = JWKRSA.from_json({"kty": "RSA", "n": n, "e": e})
        if not isinstance(jwk, JWKRSA):
            raise UnusableKey("not an RSA key")
        # The bare cryptography key, unwrapped once here, spares josepy's wrapper on every verify.
        public_key = jwk.key.public_numbers().public_key()
    except UnusableKey:
        raise
    except Exception as exc:  # josepy and cryptography raise several unrelated types here.
        raise UnusableKey("not a valid RSA public key") from exc
    return VerificationKey(kid=kid, alg=alg, jwk=jwk, public_key=public_key, bits=bits)
