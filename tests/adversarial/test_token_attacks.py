"""A catalog of crafted requests against a protected endpoint, over HTTP, under gunicorn and uvicorn.

RFC 8725 (JWT best current practices) and RFC 6750 (bearer tokens) cases: algorithm confusion, ``none``,
in-band keys, kid tricks, non-canonical encodings, oversized and nested tokens, every claim missing,
wrong, mistyped or out of time, tenant-claim abuse, other audiences and issuers, header and scheme
variants, several credentials at once; and controls that must be accepted (a catalog that rejects
everything proves nothing).

For every case: the expected status (never 2xx for an attack, never 5xx), the RFC 6750 challenge,
a response within the safety bound, no token content or traceback in the body, and a valid token
still works right after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from cobee_django.jose import b64url_encode
from cobee_django.testing import MISSING, TokenIssuer

from .conftest import AUDIENCE, READ, RESPONSE_BOUND, assert_no_leak, check_challenge

pytestmark = pytest.mark.adversarial

META = "https://auth.cobee.io/metadata"

# What a case must get back.
ACCEPT = "accept"  # 200
INVALID_TOKEN = "invalid_token"  # 401, error="invalid_token"
INVALID_REQUEST = "invalid_request"  # 400, error="invalid_request"
NO_CREDENTIALS = "no_credentials"  # 401, a challenge without error
INSUFFICIENT_SCOPE = "insufficient_scope"  # 403, error="insufficient_scope"
FORBIDDEN = "forbidden"  # 403 from the tenant checks: the token is valid, the company is not its own


@dataclass
class Request:
    headers: list[tuple[str, str | bytes]]
    method: str = "GET"
    query: str = ""
    body: bytes | None = None
    secrets: list[str] = field(default_factory=list)


class Kit:
    """What cases build their requests from: the trusted issuer, an attacker, the target company."""

    def __init__(self, issuer: TokenIssuer, attacker: TokenIssuer, company: str, other_company: str, corporation: str):
        self.issuer = issuer
        self.attacker = attacker
        self.company = company
        self.other_company = other_company
        self.corporation = corporation

    # -- tokens ------------------------------------------------------------------------------------

    def token(self, **overrides: Any) -> str:
        overrides.setdefault("scopes", READ)
        return self.issuer.make_token(self.company, **overrides)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        overrides.setdefault("scopes", READ)
        return self.issuer.claims(self.company, **overrides)

    def header(self, **overrides: Any) -> dict[str, Any]:
        header = {**self.issuer.default_header(), **overrides}
        return {k: v for k, v in header.items() if v is not MISSING}

    def meta(self, metadata: Any) -> str:
        return self.token(**{META: metadata})

    def signed(self, header_segment: str, payload_segment: str, signer: TokenIssuer | None = None) -> str:
        return (signer or self.issuer).sign_segments(header_segment, payload_segment, algorithm="RS256")

    def raw_payload(self, text: str, header: dict[str, Any] | None = None) -> str:
        """A token whose payload is exactly ``text`` (UTF-8), properly signed by the trusted key."""
        return self.signed(enc(header or self.header()), b64url_encode(text.encode("utf-8")))

    def hmac_token(self, secret: bytes, alg: str = "HS256") -> str:
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        signing_input = f"{enc(self.header(alg=alg))}.{enc(self.claims())}"
        signature = hmac.new(secret, signing_input.encode(), digest).digest()
        return f"{signing_input}.{b64url_encode(signature)}"

    def public_pem(self) -> bytes:
        return self.issuer.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_der(self) -> bytes:
        return self.issuer.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def enc(value: Any) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


def bearer(token: str, **kwargs: Any) -> Request:
    return Request(headers=[("Authorization", f"Bearer {token}")], secrets=[token], **kwargs)


def segments(token: str) -> list[str]:
    return token.split(".")


def with_segment(token: str, index: int, value: str) -> str:
    parts = segments(token)
    parts[index] = value
    return ".".join(parts)


def dirty_trailing_bits(segment: str) -> str:
    """The same bytes spelled with non-zero unused bits (lenient decoders accept it)."""
    rest = len(segment) % 4
    assert rest in (2, 3), "segment has no unused bits"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


def segment_with_rest(value: dict[str, Any], rests: tuple[int, ...] = (2, 3)) -> str:
    """``value`` encoded to a segment whose length leaves unused bits (padding an extra claim)."""
    filler = ""
    while True:
        encoded = enc({**value, "pad": filler} if filler else value)
        if len(encoded) % 4 in rests:
            return encoded
        filler += "a"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Case:
    name: str
    expect: str
    build: Callable[[Kit], Request]


CASES: list[Case] = []


def case(name: str, expect: str) -> Callable[[Callable[[Kit], Request]], Callable[[Kit], Request]]:
    def register(build: Callable[[Kit], Request]) -> Callable[[Kit], Request]:
        CASES.append(Case(name, expect, build))
        return build

    return register


def token_case(name: str, expect: str, make: Callable[[Kit], str]) -> None:
    CASES.append(Case(name, expect, lambda kit: bearer(make(kit))))


# --- must-accept controls ---------------------------------------------------------------------------------

token_case("control: a valid token", ACCEPT, lambda k: k.token())
token_case("control: aud as a list holding ours", ACCEPT, lambda k: k.token(aud=["https://other.example", AUDIENCE]))
token_case("control: fractional exp", ACCEPT, lambda k: k.token(exp=now() + 3600.5))
token_case("control: exp passed but inside the leeway", ACCEPT, lambda k: k.token(exp=now() - 10))
token_case("control: nbf ahead but inside the leeway", ACCEPT, lambda k: k.token(nbf=now() + 10))
token_case("control: iat ahead but inside the leeway", ACCEPT, lambda k: k.token(iat=now() + 10))
token_case("control: typ at+jwt", ACCEPT, lambda k: k.token(headers={"typ": "at+jwt"}))
token_case("control: no typ", ACCEPT, lambda k: k.token(headers={"typ": MISSING}))
token_case("control: a corporation token", ACCEPT, lambda k: k.issuer.make_token(k.company, k.corporation, scopes=READ))
token_case(
    "control: scopes in Auth0's permissions array",
    ACCEPT,
    lambda k: k.token(scopes=(), permissions=["read:employees"]),
)
token_case("control: unknown extra claims", ACCEPT, lambda k: k.token(https_example_com_x=1, foo={"bar": [1]}))
token_case("control: unknown extra header", ACCEPT, lambda k: k.token(headers={"x-extra": "y"}))
CASES.append(Case("control: lowercase scheme", ACCEPT, lambda k: Request([("Authorization", f"bearer {k.token()}")])))
CASES.append(Case("control: uppercase scheme", ACCEPT, lambda k: Request([("Authorization", f"BEARER {k.token()}")])))
CASES.append(
    Case(
        "control: several spaces after the scheme (1*SP)",
        ACCEPT,
        lambda k: Request([("Authorization", f"Bearer   {k.token()}")]),
    )
)
CASES.append(
    Case("control: trailing whitespace", ACCEPT, lambda k: Request([("Authorization", f"Bearer {k.token()}  ")]))
)
CASES.append(
    Case(
        "control: a query string without access_token",
        ACCEPT,
        lambda k: Request([("Authorization", f"Bearer {k.token()}")], query="?state=active&x=access_token"),
    )
)

# --- algorithm confusion and alg none (RFC 8725 2.1, 3.1) ---------------------------------------------------

for alg in ("none", "None", "NONE", "nOnE", "none "):
    token_case(
        f"alg {alg!r} without signature",
        INVALID_TOKEN,
        lambda k, alg=alg: f"{enc(k.header(alg=alg))}.{enc(k.claims())}.",
    )
token_case("alg none with a real RSA signature", INVALID_TOKEN, lambda k: k.token(headers={"alg": "none"}))
token_case("HS256 keyed with the public key PEM", INVALID_TOKEN, lambda k: k.hmac_token(k.public_pem()))
token_case("HS256 keyed with the public key DER", INVALID_TOKEN, lambda k: k.hmac_token(k.public_der()))
token_case(
    "HS256 keyed with the JWKS JSON",
    INVALID_TOKEN,
    lambda k: k.hmac_token(json.dumps(k.issuer.jwks()).encode()),
)
token_case(
    "HS256 keyed with the modulus",
    INVALID_TOKEN,
    lambda k: k.hmac_token(base64.urlsafe_b64decode(k.issuer.public_jwk["n"] + "==")),
)
token_case("HS384 keyed with the public key PEM", INVALID_TOKEN, lambda k: k.hmac_token(k.public_pem(), "HS384"))
token_case("HS512 keyed with the public key PEM", INVALID_TOKEN, lambda k: k.hmac_token(k.public_pem(), "HS512"))
token_case("HS256 keyed with an empty secret", INVALID_TOKEN, lambda k: k.hmac_token(b""))
for alg in ("RS384", "RS512", "PS256", "PS512"):
    token_case(f"{alg} signed by the trusted key", INVALID_TOKEN, lambda k, alg=alg: k.token(headers={"alg": alg}))
for alg in ("ES256", "EdDSA", "rs256", "RS256 ", "RS256\x00", "RSA-OAEP"):
    token_case(f"alg {alg!r}", INVALID_TOKEN, lambda k, alg=alg: k.token(headers={"alg": alg}))
token_case("alg missing", INVALID_TOKEN, lambda k: k.token(headers={"alg": MISSING}))
token_case("alg null", INVALID_TOKEN, lambda k: k.signed(enc(k.header(alg=None)), enc(k.claims())))
token_case("alg as a list", INVALID_TOKEN, lambda k: k.signed(enc(k.header(alg=["RS256"])), enc(k.claims())))

# --- in-band keys and processing headers (RFC 8725 3.10) ----------------------------------------------------

token_case(
    "jwk header with the attacker's key, signed by it",
    INVALID_TOKEN,
    lambda k: k.attacker.make_token(k.company, scopes=READ, headers={"jwk": k.attacker.public_jwk}),
)
token_case(
    "jwk header with the attacker's key under the trusted kid",
    INVALID_TOKEN,
    lambda k: k.attacker.make_token(
        k.company, scopes=READ, headers={"kid": k.issuer.kid, "jwk": k.attacker.public_jwk}
    ),
)
token_case(
    "jku pointing at the attacker's key set",
    INVALID_TOKEN,
    lambda k: k.attacker.make_token(
        k.company, scopes=READ, headers={"jku": "http://127.0.0.1:9/.well-known/jwks.json"}
    ),
)
token_case(
    "x5u pointing at the attacker",
    INVALID_TOKEN,
    lambda k: k.attacker.make_token(k.company, scopes=READ, headers={"x5u": "http://127.0.0.1:9/cert.pem"}),
)
token_case(
    "x5c with an attacker certificate chain",
    INVALID_TOKEN,
    lambda k: k.attacker.make_token(k.company, scopes=READ, headers={"x5c": [base64.b64encode(b"x" * 64).decode()]}),
)
token_case("jwk header on a token signed by the trusted key", INVALID_TOKEN, lambda k: k.token(headers={"jwk": {}}))
token_case("crit header", INVALID_TOKEN, lambda k: k.token(headers={"crit": ["exp"], "exp": 1}))
token_case("b64 false (RFC 7797)", INVALID_TOKEN, lambda k: k.token(headers={"b64": False, "crit": ["b64"]}))
token_case("zip DEF", INVALID_TOKEN, lambda k: k.token(headers={"zip": "DEF"}))
for typ in ("JWE", "JOSE+JSON", "", "jwt+at"):
    token_case(f"typ {typ!r}", INVALID_TOKEN, lambda k, typ=typ: k.token(headers={"typ": typ}))
token_case("typ a number", INVALID_TOKEN, lambda k: k.token(headers={"typ": 1}))

# --- kid tricks ------------------------------------------------------------------------------------------

token_case("kid missing", INVALID_TOKEN, lambda k: k.token(headers={"kid": MISSING}))
token_case("kid empty", INVALID_TOKEN, lambda k: k.token(headers={"kid": ""}))
token_case("kid null", INVALID_TOKEN, lambda k: k.token(headers={"kid": None}))
token_case("kid a number", INVALID_TOKEN, lambda k: k.token(headers={"kid": 1}))
token_case("kid a list", INVALID_TOKEN, lambda k: k.token(headers={"kid": [k.issuer.kid]}))
token_case("kid unknown", INVALID_TOKEN, lambda k: k.token(headers={"kid": secrets.token_hex(16)}))
token_case("kid path traversal", INVALID_TOKEN, lambda k: k.token(headers={"kid": "../../../../../../dev/null"}))
token_case("kid SQL injection", INVALID_TOKEN, lambda k: k.token(headers={"kid": "x' UNION SELECT 'secret' --"}))
token_case("kid of 300 characters", INVALID_TOKEN, lambda k: k.token(headers={"kid": "k" * 300}))
token_case("kid in another case", INVALID_TOKEN, lambda k: k.token(headers={"kid": k.issuer.kid.upper()}))
token_case("kid with a trailing space", INVALID_TOKEN, lambda k: k.token(headers={"kid": k.issuer.kid + " "}))
token_case(
    "attacker's key under the trusted kid",
    INVALID_TOKEN,
    lambda k: k.attacker.make_token(k.company, scopes=READ, headers={"kid": k.issuer.kid}),
)
token_case("attacker's key under its own kid", INVALID_TOKEN, lambda k: k.attacker.make_token(k.company, scopes=READ))

# --- signature tampering ---------------------------------------------------------------------------------

token_case(
    "payload swapped to another company, signature kept",
    INVALID_TOKEN,
    lambda k: with_segment(k.token(), 1, segments(k.issuer.make_token(k.other_company, scopes=READ))[1]),
)
token_case(
    "scopes widened, signature kept",
    INVALID_TOKEN,
    lambda k: with_segment(k.token(scopes=()), 1, segments(k.token())[1]),
)
token_case("signature empty", INVALID_TOKEN, lambda k: with_segment(k.token(), 2, ""))
token_case("signature truncated", INVALID_TOKEN, lambda k: with_segment(k.token(), 2, segments(k.token())[2][:-4]))
token_case(
    "signature with one bit flipped",
    INVALID_TOKEN,
    lambda k: with_segment(
        k.token(),
        2,
        b64url_encode(bytes([base64.urlsafe_b64decode(segments(k.token())[2] + "==")[0] ^ 1]))[:2]
        + segments(k.token())[2][2:],
    ),
)
token_case("signature of zeros", INVALID_TOKEN, lambda k: with_segment(k.token(), 2, b64url_encode(bytes(256))))
token_case("signature of one byte", INVALID_TOKEN, lambda k: with_segment(k.token(), 2, b64url_encode(b"\x01")))
token_case(
    "signature of another token",
    INVALID_TOKEN,
    lambda k: with_segment(k.token(), 2, segments(k.token(exp=now() + 99))[2]),
)
token_case(
    "signature of 4096 bits",
    INVALID_TOKEN,
    lambda k: with_segment(k.token(), 2, b64url_encode(secrets.token_bytes(512))),
)

# --- compact serialization and encodings (RFC 7515, RFC 8725 3.4) --------------------------------------------

for raw in ("", "a", "a.b", "a.b.c.d", "a.b.c.d.e", "..", "...", ".", "null"):
    token_case(f"structure {raw!r}", INVALID_TOKEN if raw else INVALID_REQUEST, lambda k, raw=raw: raw)
token_case(
    "a JWE (five segments)",
    INVALID_TOKEN,
    lambda k: ".".join([enc({"alg": "RSA-OAEP", "enc": "A256GCM"})] + ["AAAA"] * 4),
)
token_case("a fourth segment appended", INVALID_TOKEN, lambda k: k.token() + ".e30")
token_case(
    "header padded with '='",
    INVALID_TOKEN,
    lambda k: k.signed(
        segment_with_rest(k.header(), (2, 3)) + "=" * (4 - len(segment_with_rest(k.header(), (2, 3))) % 4),
        enc(k.claims()),
    ),
)
token_case(
    "payload padded with '='",
    INVALID_TOKEN,
    lambda k: k.signed(
        enc(k.header()), segment_with_rest(k.claims()) + "=" * (4 - len(segment_with_rest(k.claims())) % 4)
    ),
)
token_case(
    "signature padded with '='",
    INVALID_TOKEN,
    lambda k: k.token() + "=" * (-len(segments(k.token())[2]) % 4),
)
token_case(
    "header with non-zero trailing bits",
    INVALID_TOKEN,
    lambda k: k.signed(dirty_trailing_bits(segment_with_rest(k.header())), enc(k.claims())),
)
token_case(
    "payload with non-zero trailing bits",
    INVALID_TOKEN,
    lambda k: k.signed(enc(k.header()), dirty_trailing_bits(segment_with_rest(k.claims()))),
)
token_case(
    "signature with non-zero trailing bits",
    INVALID_TOKEN,
    lambda k: with_segment(k.token(), 2, dirty_trailing_bits(segments(k.token())[2])),
)
token_case(
    "standard base64 alphabet (+ and /)",
    INVALID_TOKEN,
    lambda k: next(
        t.replace("-", "+").replace("_", "/")
        for t in (k.token(jti=str(uuid.uuid4())) for _ in range(50))
        if "-" in t or "_" in t
    ),
)
token_case(
    "header with a byte order mark",
    INVALID_TOKEN,
    lambda k: k.signed(b64url_encode(b"\xef\xbb\xbf" + json.dumps(k.header()).encode()), enc(k.claims())),
)
token_case(
    "payload with a byte order mark",
    INVALID_TOKEN,
    lambda k: k.signed(enc(k.header()), b64url_encode(b"\xef\xbb\xbf" + json.dumps(k.claims()).encode())),
)
token_case(
    "payload not UTF-8 (latin-1)",
    INVALID_TOKEN,
    lambda k: k.signed(
        enc(k.header()), b64url_encode(json.dumps(k.claims(azp="caf\u00e9"), ensure_ascii=False).encode("latin-1"))
    ),
)
token_case("payload not JSON", INVALID_TOKEN, lambda k: k.raw_payload("iss=me"))
token_case("payload a JSON array", INVALID_TOKEN, lambda k: k.raw_payload(json.dumps([k.claims()])))
token_case("payload a JSON string", INVALID_TOKEN, lambda k: k.raw_payload('"claims"'))
token_case("payload JSON null", INVALID_TOKEN, lambda k: k.raw_payload("null"))
token_case("header a JSON array", INVALID_TOKEN, lambda k: k.signed(enc([k.header()]), enc(k.claims())))
token_case(
    "payload with trailing garbage after the JSON",
    INVALID_TOKEN,
    lambda k: k.raw_payload(json.dumps(k.claims()) + "x"),
)
token_case(
    "payload nested 4000 levels deep",
    INVALID_TOKEN,
    lambda k: k.raw_payload(json.dumps(k.claims())[:-1] + ',"deep":' + nested(4000) + "}"),
)
token_case(
    "header nested 4000 levels deep",
    INVALID_TOKEN,
    lambda k: k.signed(
        b64url_encode((json.dumps(k.header())[:-1] + ',"deep":' + nested(4000) + "}").encode()), enc(k.claims())
    ),
)
token_case(
    "payload nested 20 objects deep (over the cap)",
    INVALID_TOKEN,
    lambda k: k.raw_payload(json.dumps(k.claims())[:-1] + ',"deep":' + '{"a":' * 20 + "1" + "}" * 20 + "}"),
)
token_case("token just over 16 KiB", INVALID_TOKEN, lambda k: k.token(blob="x" * 12_500))
token_case("token of 30 KiB", INVALID_TOKEN, lambda k: k.token(blob="x" * 22_000))
token_case("16 KiB of base64url characters", INVALID_TOKEN, lambda k: "A" * 16_385)

# --- the claims (RFC 7519, RFC 8725 3.8-3.9) ----------------------------------------------------------------

CLAIM_CASES: list[tuple[str, dict[str, Any]]] = [
    ("iss missing", {"iss": MISSING}),
    ("iss another issuer", {"iss": "https://evil.example/"}),
    ("iss without its trailing slash", None),  # filled below
    ("iss null", {"iss": None}),
    ("iss a list", None),
    ("iss a number", {"iss": 1}),
    ("aud missing", {"aud": MISSING}),
    ("aud another API", {"aud": "https://other-api.example"}),
    ("aud ours with a trailing slash", {"aud": AUDIENCE + "/"}),
    ("aud an empty list", {"aud": []}),
    ("aud a list without ours", {"aud": ["https://a.example", "https://b.example"]}),
    ("aud a list with a number", {"aud": [AUDIENCE, 1]}),
    ("aud a number", {"aud": 1}),
    ("aud null", {"aud": None}),
    ("aud an object", {"aud": {"aud": AUDIENCE}}),
    ("exp missing", {"exp": MISSING}),
    ("exp an hour ago", {"exp": -3600}),
    ("exp just outside the leeway", {"exp": -45}),
    ("exp a string", {"exp": "9999999999"}),
    ("exp true", {"exp": True}),
    ("exp null", {"exp": None}),
    ("exp a list", {"exp": [9999999999]}),
    ("exp zero", {"exp": 0}),
    ("exp negative", {"exp": -1}),
    ("nbf an hour ahead", {"nbf": 3600}),
    ("nbf just outside the leeway", {"nbf": 60}),
    ("nbf a string", {"nbf": "0"}),
    ("nbf true", {"nbf": True}),
    ("nbf null", {"nbf": None}),
    ("iat an hour ahead", {"iat": 3600}),
    ("iat a string", {"iat": "0"}),
    ("iat false", {"iat": False}),
    ("iat null", {"iat": None}),
    ("gty missing", {"gty": MISSING}),
    ("gty password", {"gty": "password"}),
    ("gty authorization_code", {"gty": "authorization_code"}),
    ("gty a list", {"gty": ["client-credentials"]}),
    ("gty empty", {"gty": ""}),
    ("azp missing", {"azp": MISSING}),
    ("azp a number", {"azp": 7}),
    ("azp empty", {"azp": "", "sub": "@clients"}),
    ("azp with a control character", {"azp": "cli\x00ent", "sub": "cli\x00ent@clients"}),
    ("azp of 300 characters", {"azp": "a" * 300, "sub": "a" * 300 + "@clients"}),
    ("sub missing", {"sub": MISSING}),
    ("sub another client", {"sub": "other-client@clients"}),
    ("sub without @clients", {"sub": "test-client"}),
    ("sub a number", {"sub": 1}),
    ("scope a list", {"scope": ["read:employees"]}),
    ("scope with a quote", {"scope": 'read:employees "x'}),
    ("scope with a backslash", {"scope": "read:employees \\x"}),
    ("scope with two spaces", {"scope": "read:employees  write:employees"}),
    ("scope with a leading space", {"scope": " read:employees"}),
    ("scope a number", {"scope": 1}),
    ("permissions a string", {"scope": "", "permissions": "read:employees"}),
    ("permissions with a number", {"scope": "", "permissions": ["read:employees", 1]}),
]
TIME_CLAIMS = {"exp", "nbf", "iat"}


def _claim_overrides(kit: Kit, name: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    if name == "iss without its trailing slash":
        return {"iss": kit.issuer.issuer.rstrip("/")}
    if name == "iss a list":
        return {"iss": [kit.issuer.issuer]}
    assert overrides is not None
    resolved = {}
    for claim, value in overrides.items():
        if claim in TIME_CLAIMS and type(value) is int and value not in (0, -1):
            value = now() + value  # relative times
        resolved[claim] = value
    return resolved


for _name, _overrides in CLAIM_CASES:
    token_case(_name, INVALID_TOKEN, lambda k, n=_name, o=_overrides: k.token(**_claim_overrides(k, n, o)))
token_case("exp NaN", INVALID_TOKEN, lambda k: k.raw_payload(json.dumps(k.claims())[:-1] + ',"exp":NaN}'))
token_case(
    "exp Infinity (1e999)",
    INVALID_TOKEN,
    lambda k: k.raw_payload(json.dumps(k.claims(exp=MISSING))[:-1] + ',"exp":1e999}'),
)
token_case(
    "exp duplicated (expired first, valid second)",
    INVALID_TOKEN,
    lambda k: k.raw_payload('{"exp":1,' + json.dumps(k.claims())[1:]),
)
token_case("no scope at all", INSUFFICIENT_SCOPE, lambda k: k.token(scopes=()))
token_case("a scope that is not ours", INSUFFICIENT_SCOPE, lambda k: k.token(scopes=["read:employee"]))
token_case("write scope only", INSUFFICIENT_SCOPE, lambda k: k.token(scopes=["write:employees"]))

# --- the tenant claim -------------------------------------------------------------------------------------

for _name, _metadata in [
    ("metadata missing", MISSING),
    ("metadata empty", {}),
    ("metadata a string", "companyId"),
    ("metadata a list", []),
    ("metadata null", None),
    ("companyId missing", {"corporationId": str(uuid.uuid4())}),
    ("companyId null", {"companyId": None}),
    ("companyId a number", {"companyId": 1}),
    ("companyId a list", None),
    ("companyId not a UUID", {"companyId": "not-a-uuid"}),
    ("companyId empty", {"companyId": ""}),
    ("companyId SQL injection", {"companyId": "' OR '1'='1"}),
    ("companyId upper-case UUID", None),
    ("companyId UUID in braces", None),
    ("companyId URN", None),
    ("companyId hex without dashes", None),
    ("companyId with trailing space", None),
    ("corporationId not a UUID", None),
    ("corporationId a number", None),
    ("corporationId upper-case", None),
]:

    def _meta(kit: Kit, name: str = _name, metadata: Any = _metadata) -> str:
        c = kit.company
        variants = {
            "companyId a list": {"companyId": [c, kit.other_company]},
            "companyId upper-case UUID": {"companyId": c.upper()},
            "companyId UUID in braces": {"companyId": "{" + c + "}"},
            "companyId URN": {"companyId": "urn:uuid:" + c},
            "companyId hex without dashes": {"companyId": c.replace("-", "")},
            "companyId with trailing space": {"companyId": c + " "},
            "corporationId not a UUID": {"companyId": c, "corporationId": "group"},
            "corporationId a number": {"companyId": c, "corporationId": 5},
            "corporationId upper-case": {"companyId": c, "corporationId": kit.corporation.upper()},
        }
        return kit.meta(variants.get(name, metadata))

    token_case(_name, INVALID_TOKEN, _meta)
token_case(
    "metadata claim under another name",
    INVALID_TOKEN,
    lambda k: k.token(**{META: MISSING, "https://auth.cobee.io/Metadata": {"companyId": k.company}}),
)
token_case(
    "companyId at the top level instead of in the metadata",
    INVALID_TOKEN,
    lambda k: k.token(**{META: MISSING, "companyId": k.company}),
)
token_case(
    "metadata duplicated (another company first)",
    INVALID_TOKEN,
    lambda k: k.raw_payload('{"' + META + '":{"companyId":"' + k.other_company + '"},' + json.dumps(k.claims())[1:]),
)
token_case(
    "companyId duplicated inside the metadata",
    INVALID_TOKEN,
    lambda k: k.raw_payload(
        json.dumps(k.claims(**{META: MISSING}))[:-1]
        + f',"{META}":{{"companyId":"{k.other_company}","companyId":"{k.company}"}}}}'
    ),
)
token_case("a valid token for another company", FORBIDDEN, lambda k: k.issuer.make_token(k.other_company, scopes=READ))

# --- another audience or issuer ----------------------------------------------------------------------------

token_case(
    "an attacker issuer's token naming itself",
    INVALID_TOKEN,
    lambda k: TokenIssuer(issuer="https://evil.example/", audience=AUDIENCE, key=k.attacker.key).make_token(
        k.company, scopes=READ
    ),
)
token_case(
    "the trusted key, another issuer's name",
    INVALID_TOKEN,
    lambda k: k.token(iss="https://other-tenant.eu.auth0.com/"),
)
token_case(
    "the trusted key, an http variant of the issuer",
    INVALID_TOKEN,
    lambda k: k.token(iss=k.issuer.issuer.replace("127.0.0.1", "localhost")),
)

# --- the Authorization header, schemes, and where the token travels (RFC 6750 2, 3) ---------------------------

CASES += [
    Case("no Authorization header", NO_CREDENTIALS, lambda k: Request([])),
    Case("scheme alone", INVALID_REQUEST, lambda k: Request([("Authorization", "Bearer")])),
    Case("scheme and a space", INVALID_REQUEST, lambda k: Request([("Authorization", "Bearer ")])),
    Case("Basic credentials", NO_CREDENTIALS, lambda k: Request([("Authorization", "Basic dXNlcjpwYXNzd29yZA==")])),
    Case("scheme Token", NO_CREDENTIALS, lambda k: Request([("Authorization", f"Token {k.token()}")])),
    Case("scheme JWT", NO_CREDENTIALS, lambda k: Request([("Authorization", f"JWT {k.token()}")])),
    Case("the token without a scheme", NO_CREDENTIALS, lambda k: Request([("Authorization", k.token())])),
    Case("scheme glued with '='", NO_CREDENTIALS, lambda k: Request([("Authorization", f"Bearer={k.token()}")])),
    Case("a tab after the scheme", INVALID_REQUEST, lambda k: Request([("Authorization", f"Bearer\t{k.token()}")])),
    Case(
        "a space inside the token",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f"Bearer {k.token()[:20]} {k.token()[20:]}")]),
    ),
    Case(
        "a tab inside the token",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f"Bearer {k.token()[:20]}\t{k.token()[20:]}")]),
    ),
    Case("the token in quotes", INVALID_REQUEST, lambda k: Request([("Authorization", f'Bearer "{k.token()}"')])),
    Case("a trailing semicolon", INVALID_REQUEST, lambda k: Request([("Authorization", f"Bearer {k.token()};")])),
    Case(
        "latin-1 bytes in the token",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", b"Bearer " + k.token()[:30].encode() + b"\xe9\xff")]),
    ),
    Case(
        "auth-params instead of a token",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f'Bearer token="{k.token()}"')]),
    ),
    Case(
        "two tokens in one header",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f"Bearer {k.token()}, Bearer {k.token()}")]),
    ),
    Case(
        "two Authorization headers",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f"Bearer {k.token()}"), ("Authorization", f"Bearer {k.token()}")]),
    ),
    Case(
        "Bearer and Basic headers",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f"Bearer {k.token()}"), ("Authorization", "Basic dTpw")]),
    ),
    Case(
        "a valid and a forged token",
        INVALID_REQUEST,
        lambda k: Request(
            [("Authorization", f"Bearer {k.token()}"), ("Authorization", f"Bearer {k.attacker.make_token(k.company)}")]
        ),
    ),
    Case("the token in the query string", INVALID_REQUEST, lambda k: Request([], query=f"?access_token={k.token()}")),
    Case(
        "header and query string",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f"Bearer {k.token()}")], query=f"?access_token={k.token()}"),
    ),
    Case(
        "an empty access_token parameter with a header",
        INVALID_REQUEST,
        lambda k: Request([("Authorization", f"Bearer {k.token()}")], query="?access_token="),
    ),
    Case(
        "the token in a form body",
        INVALID_REQUEST,
        lambda k: Request(
            [("Content-Type", "application/x-www-form-urlencoded")],
            method="POST",
            body=f"access_token={k.token()}".encode(),
        ),
    ),
    Case(
        "header and form body",
        INVALID_REQUEST,
        lambda k: Request(
            [("Authorization", f"Bearer {k.token()}"), ("Content-Type", "application/x-www-form-urlencoded")],
            method="POST",
            body=f"access_token={k.token()}".encode(),
        ),
    ),
    Case(
        "the token in X-Authorization",
        NO_CREDENTIALS,
        lambda k: Request([("X-Authorization", f"Bearer {k.token()}")]),
    ),
    Case(
        "the token in Proxy-Authorization",
        NO_CREDENTIALS,
        lambda k: Request([("Proxy-Authorization", f"Bearer {k.token()}")]),
    ),
    Case("the token in a cookie", NO_CREDENTIALS, lambda k: Request([("Cookie", f"access_token={k.token()}")])),
    Case(
        "a forged token on HEAD",
        INVALID_TOKEN,
        lambda k: Request([("Authorization", f"Bearer {k.attacker.make_token(k.company)}")], method="HEAD"),
    ),
    Case(
        "a forged token on a write",
        INVALID_TOKEN,
        lambda k: Request(
            [
                ("Authorization", f"Bearer {k.attacker.make_token(k.company, scopes=['write:employees'])}"),
                ("Content-Type", "application/json"),
            ],
            method="POST",
            body=b'{"email": "mallory@evil.example", "legalId": "1", "name": "M", "surname": "M"}',
        ),
    ),
]

STATUS = {
    ACCEPT: 200,
    INVALID_TOKEN: 401,
    INVALID_REQUEST: 400,
    NO_CREDENTIALS: 401,
    INSUFFICIENT_SCOPE: 403,
    FORBIDDEN: 403,
}


def test_the_catalog_is_big_enough():
    attacks = [c for c in CASES if c.expect != ACCEPT]
    assert len(attacks) >= 100
    assert len([c for c in CASES if c.expect == ACCEPT]) >= 10
    assert len({c.name for c in CASES}) == len(CASES), "case names are unique"


@pytest.fixture(scope="module")
def kit(issuer, world):
    company = world.first_company()
    corporation = world.corporation_of(company)
    other = next(c for c in world.company_ids() if c != company)
    attacker = TokenIssuer(issuer=issuer.issuer, audience=AUDIENCE)
    return Kit(issuer, attacker, company, other, corporation)


SENT: list[str] = []


@pytest.mark.parametrize("attack", CASES, ids=[c.name for c in CASES])
def test_attack(served, kit, attack, record):
    request = attack.build(kit)
    path = f"/api/v3/companies/{kit.company}/employees{request.query}"
    for _, value in request.headers:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        SENT.extend(part for part in text.replace(",", " ").split() if part.count(".") == 2)
    status, headers, content, seconds = served.request(request.method, path, request.headers, request.body)
    record.timed(seconds)

    assert status == STATUS[attack.expect], (status, content[:300])
    if attack.expect == ACCEPT:
        assert set(json.loads(content)) >= {"employees"}
    elif attack.expect == FORBIDDEN:
        assert headers.get("WWW-Authenticate") is None
    else:
        check_challenge(headers, None if attack.expect == NO_CREDENTIALS else attack.expect)
    if request.method == "HEAD":
        assert content == b""
    assert_no_leak(content, request.secrets + SENT[-4:])
    assert seconds < RESPONSE_BOUND, f"took {seconds:.2f} s"

    # The server is still fine: a valid token works right after.
    status, payload = served.get_json(f"/api/v3/companies/{kit.company}/employees", kit.token())
    assert status == 200, payload
    assert {row["companyId"] for row in payload["employees"]} == {kit.company}


def test_the_server_logged_no_token_and_no_traceback(served):
    log = served.log()
    assert "Traceback" not in log
    leaked = [token for token in SENT if token.split(".")[-1] and token.split(".")[-1] in log]
    assert not leaked, f"{len(leaked)} tokens appear in the server log"


@pytest.mark.parametrize("path", ["/admin/", "/admin/cobee_django/company/", "/admin/auth/user/"])
def test_a_valid_token_does_not_open_the_admin(served, kit, path, record):
    """Access tokens are for the API: the admin ignores them and asks a person to sign in."""
    token = kit.issuer.make_token(kit.company, kit.corporation, scopes=READ)
    status, headers, content, seconds = served.request("GET", path, [("Authorization", f"Bearer {token}")])
    record.timed(seconds)
    assert status == 302, status
    assert headers["Location"].startswith("/admin/login/")
    assert_no_leak(content, [token])
