"""JWTAuthentication through real DRF views: accepted tokens, and every bad token answered per RFC 6750.

Tokens are built by a TokenIssuer whose key set is served over HTTP by a JWKSServer on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from django.test import AsyncClient, override_settings
from rest_framework.test import APIClient

from cobee_django import signals
from cobee_django.bearer import (
    INSUFFICIENT_SCOPE_DESCRIPTION,
    INVALID_REQUEST_DESCRIPTION,
    INVALID_TOKEN_DESCRIPTION,
)
from cobee_django.jose import b64url_encode
from cobee_django.testing import MISSING, TokenIssuer

pytestmark = pytest.mark.urls("tests.testapp.authviews")

COMPANY = uuid.UUID("5e9e9701-9883-447d-9884-46e75993e33b")
CORPORATION = uuid.UUID("0b7f3c55-3c1e-4a8e-9a57-1f2d8e0c9a11")
METADATA = "https://auth.cobee.io/metadata"
CHALLENGE = 'Bearer realm="api"'
INVALID_TOKEN = f'{CHALLENGE}, error="invalid_token", error_description="{INVALID_TOKEN_DESCRIPTION}"'
INVALID_REQUEST = f'{CHALLENGE}, error="invalid_request", error_description="{INVALID_REQUEST_DESCRIPTION}"'


def b64(data: bytes | str) -> str:
    return b64url_encode(data.encode() if isinstance(data, str) else data)


def enc(obj: object) -> str:
    return b64(json.dumps(obj, separators=(",", ":")))


def get(token: str | None = None, *, path: str = "/whoami", **extra):
    client = APIClient()
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.get(path, **extra)


def assert_rejected(response, token: str | None, *, status: int = 401, challenge: str = INVALID_TOKEN) -> None:
    body = response.content.decode()
    assert response.status_code == status, body
    assert response["WWW-Authenticate"] == challenge
    description = INVALID_TOKEN_DESCRIPTION if status == 401 else INVALID_REQUEST_DESCRIPTION
    assert response.json() == {"detail": description}
    assert "Traceback" not in body and "Error" not in body
    if token:
        for segment in token.split("."):
            if len(segment) > 8:
                assert segment not in body


# --- accepted tokens ------------------------------------------------------------------------------


def test_valid_token_authenticates_a_client_principal(auth_settings, token_issuer):
    token = token_issuer.make_token(COMPANY, scopes=["read:employees", "write:employees"], client_id="abc123")
    response = get(token)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "client_id": "abc123",
        "company_id": str(COMPANY),
        "corporation_id": None,
        "scopes": ["read:employees", "write:employees"],
        "issuer": token_issuer.issuer,
        "auth": "ValidatedToken",
    }


def test_corporation_and_permissions_are_read(auth_settings, token_issuer):
    token = token_issuer.make_token(COMPANY, CORPORATION, scopes=["read:employees"], permissions=["write:employees"])
    data = get(token).json()
    assert data["corporation_id"] == str(CORPORATION)
    assert data["scopes"] == ["read:employees", "write:employees"]


@pytest.mark.parametrize(
    ("overrides", "headers"),
    [
        pytest.param({"exp": 4102444800.5}, {}, id="fractional-exp"),
        pytest.param({"aud": ["https://other.example", "https://api.test.example"]}, {}, id="aud-list"),
        pytest.param({}, {"typ": "at+jwt"}, id="typ-at+jwt"),
        pytest.param({}, {"typ": MISSING}, id="typ-absent"),
        pytest.param({"iat": MISSING}, {}, id="no-iat"),
        pytest.param({"nbf": 0}, {}, id="nbf-past"),
        pytest.param({"scope": MISSING}, {}, id="no-scope"),
        pytest.param({"scope": ""}, {}, id="empty-scope"),
    ],
)
def test_valid_variants_are_accepted(auth_settings, token_issuer, overrides, headers):
    token = token_issuer.make_token(COMPANY, headers=headers, **overrides)
    assert get(token).status_code == 200


def test_leeway_tolerates_small_clock_skew(auth_settings, token_issuer):
    import time

    now = int(time.time())
    assert get(token_issuer.make_token(COMPANY, exp=now - 10)).status_code == 200
    assert get(token_issuer.make_token(COMPANY, nbf=now + 10, iat=now + 10)).status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(auth_settings, token_issuer, scheme):
    token = token_issuer.make_token(COMPANY)
    assert APIClient().get("/whoami", HTTP_AUTHORIZATION=f"{scheme} {token}").status_code == 200


def test_several_spaces_after_the_scheme_are_allowed(auth_settings, token_issuer):
    # RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token.
    token = token_issuer.make_token(COMPANY)
    assert APIClient().get("/whoami", HTTP_AUTHORIZATION=f"Bearer   {token}").status_code == 200


def test_asgi_request_is_authenticated(auth_settings, token_issuer):
    import asyncio

    token = token_issuer.make_token(COMPANY, scopes=["read:employees"])

    async def call():
        client = AsyncClient()
        good = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        bad = await client.get("/whoami", headers={"Authorization": f"Bearer {token}x"})
        return good, bad

    good, bad = asyncio.run(call())
    assert good.status_code == 200 and good.json()["company_id"] == str(COMPANY)
    assert_rejected(bad, token)


# --- missing credentials and transport errors ------------------------------------------------------


def test_no_credentials_is_a_bare_challenge(auth_settings):
    response = get()
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE


def test_other_scheme_is_left_to_other_authenticators(auth_settings):
    response = APIClient().get("/whoami", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE


def test_realm_comes_from_settings(auth_settings, settings):
    settings.COBEE_DJANGO = {**auth_settings, "REALM": "partners"}
    assert get()["WWW-Authenticate"] == 'Bearer realm="partners"'
    assert get("x.y.z")["WWW-Authenticate"].startswith('Bearer realm="partners", error="invalid_token"')


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer {token} ",
        "Bearer {token} extra",
        "Bearer {token}, Bearer {token}",
        "Bearer {token},{token}",
        "Bearer {token}\t",
        "Bearer tok$en",
        "Bearer {token}!",
        "Bearer {token}%20",
        'Bearer "{token}"',
    ],
)
def test_malformed_authorization_header_is_invalid_request(auth_settings, token_issuer, header):
    token = token_issuer.make_token(COMPANY)
    response = APIClient().get("/whoami", HTTP_AUTHORIZATION=header.format(token=token))
    assert_rejected(response, token, status=400, challenge=INVALID_REQUEST)


def test_token_in_query_string_is_invalid_request(auth_settings, token_issuer):
    token = token_issuer.make_token(COMPANY)
    assert_rejected(get(path=f"/whoami?access_token={token}"), token, status=400, challenge=INVALID_REQUEST)
    # Also when a valid header is sent too: two credentials.
    assert_rejected(get(token, path=f"/whoami?access_token={token}"), token, status=400, challenge=INVALID_REQUEST)


def test_token_in_form_body_is_invalid_request(auth_settings, token_issuer):
    token = token_issuer.make_token(COMPANY)
    client = APIClient()
    form = "application/x-www-form-urlencoded"
    response = client.post("/whoami", f"access_token={token}", content_type=form)
    assert_rejected(response, token, status=400, challenge=INVALID_REQUEST)
    response = client.post("/whoami", f"access_token={token}", content_type=form, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_rejected(response, token, status=400, challenge=INVALID_REQUEST)
    # A JSON body is not a form: the field is just data.
    response = client.post("/whoami", {"access_token": "x"}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200


def test_insufficient_scope_is_403_with_scope(auth_settings, token_issuer):
    token = token_issuer.make_token(COMPANY, scopes=["read:employees"])
    response = get(token, path="/write")
    assert response.status_code == 403
    assert response["WWW-Authenticate"] == (
        f'{CHALLENGE}, error="insufficient_scope", error_description="{INSUFFICIENT_SCOPE_DESCRIPTION}", '
        'scope="write:employees"'
    )
    assert get(token_issuer.make_token(COMPANY, scopes=["write:employees"]), path="/write").status_code == 200


def test_unreachable_issuer_with_cold_cache_is_503(auth_settings, token_issuer, jwks_server):
    jwks_server.set_fault("down")
    response = get(token_issuer.make_token(COMPANY))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Traceback" not in response.content.decode()


# --- the bad-token matrix --------------------------------------------------------------------------


def _hs256(issuer: TokenIssuer, secret: bytes) -> str:
    header = enc({"alg": "HS256", "typ": "JWT", "kid": issuer.kid})
    payload = enc(issuer.claims(COMPANY))
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _unsigned(issuer: TokenIssuer, header: dict, signature: str = "") -> str:
    return f"{enc(header)}.{enc(issuer.claims(COMPANY))}.{signature}"


def _raw_payload(issuer: TokenIssuer, payload: bytes) -> str:
    return issuer.sign_segments(enc(issuer.default_header()), b64(payload))


def _raw_claims_json(issuer: TokenIssuer, replace: tuple[str, str]) -> str:
    text = json.dumps(issuer.claims(COMPANY), separators=(",", ":"))
    old, new = replace
    assert old in text
    return _raw_payload(issuer, text.replace(old, new, 1).encode())


def _attacker(issuer: TokenIssuer, **kwargs) -> TokenIssuer:
    return TokenIssuer(issuer=issuer.issuer, audience=issuer.audience, **kwargs)


def _swap_alphabet(token: str) -> str:
    head, _, signature = token.rpartition(".")
    # A 256-byte signature always has a '-' or '_' in practice; fail loudly if not.
    assert "-" in signature or "_" in signature
    return f"{head}.{signature.replace('-', '+').replace('_', '/')}"


def _bump_trailing_bits(segment: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(segment) % 4 in (2, 3)
    return segment[:-1] + alphabet[alphabet.index(segment[-1]) + 1]


def _flip(segment: str, index: int) -> str:
    return segment[:index] + ("A" if segment[index] != "A" else "B") + segment[index + 1 :]


def _with_header(issuer: TokenIssuer, **header) -> str:
    return issuer.make_token(COMPANY, headers=header)


def _deep(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


BAD_TOKENS = {
    # Algorithm confusion and unsigned tokens.
    "alg-none": lambda i: _unsigned(i, {"alg": "none", "typ": "JWT", "kid": i.kid}),
    "alg-None": lambda i: _unsigned(i, {"alg": "None", "typ": "JWT", "kid": i.kid}),
    "alg-NONE": lambda i: _unsigned(i, {"alg": "NONE", "typ": "JWT", "kid": i.kid}),
    "alg-nOnE": lambda i: _unsigned(i, {"alg": "nOnE", "typ": "JWT", "kid": i.kid}),
    "alg-none-with-rsa-signature": lambda i: _with_header(i, alg="none"),
    "alg-missing": lambda i: _with_header(i, alg=MISSING),
    "alg-null": lambda i: _with_header(i, alg=None),
    "alg-list": lambda i: _with_header(i, alg=["RS256"]),
    "alg-lowercase-rs256": lambda i: _with_header(i, alg="rs256"),
    "alg-ES256": lambda i: _with_header(i, alg="ES256"),
    "hs256-keyed-with-public-pem": lambda i: _hs256(
        i, i.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ),
    "hs256-keyed-with-jwks-json": lambda i: _hs256(i, json.dumps(i.jwks()).encode()),
    "hs256-keyed-with-jwk-json": lambda i: _hs256(i, json.dumps(i.public_jwk).encode()),
    "RS384-with-trusted-key": lambda i: _with_header(i, alg="RS384"),
    "RS512-with-trusted-key": lambda i: _with_header(i, alg="RS512"),
    "PS256-with-trusted-key": lambda i: _with_header(i, alg="PS256"),
    # In-band keys and processing rules.
    "embedded-jwk-attacker-key": lambda i: (lambda a: a.make_token(COMPANY, headers={"jwk": a.public_jwk}))(
        _attacker(i)
    ),
    "embedded-jwk-trusted-kid": lambda i: (
        lambda a: a.make_token(COMPANY, headers={"jwk": a.public_jwk, "kid": i.kid})
    )(_attacker(i)),
    "jku": lambda i: _with_header(i, jku="https://attacker.example/jwks.json"),
    "x5u": lambda i: _with_header(i, x5u="https://attacker.example/cert.pem"),
    "x5c": lambda i: _with_header(i, x5c=["MIIB"]),
    "crit": lambda i: _with_header(i, crit=["exp"], exp=1),
    "b64-false": lambda i: _with_header(i, b64=False),
    # Key ids.
    "kid-missing": lambda i: _with_header(i, kid=MISSING),
    "kid-unknown": lambda i: _with_header(i, kid="not-a-known-kid"),
    "kid-int": lambda i: _with_header(i, kid=1),
    "kid-null": lambda i: _with_header(i, kid=None),
    "kid-empty": lambda i: _with_header(i, kid=""),
    "kid-list": lambda i: _with_header(i, kid=[i.kid]),
    "attacker-key-with-trusted-kid": lambda i: _attacker(i, kid=i.kid).make_token(COMPANY),
    "typ-JOSE": lambda i: _with_header(i, typ="JOSE"),
    "typ-int": lambda i: _with_header(i, typ=1),
    # Tampering.
    "payload-tampered": lambda i: (
        lambda good, evil: f"{good.split('.')[0]}.{evil.split('.')[1]}.{good.split('.')[2]}"
    )(i.make_token(COMPANY), i.make_token(uuid.uuid4())),
    "signature-flipped": lambda i: (lambda t: f"{t.rpartition('.')[0]}.{_flip(t.rpartition('.')[2], 10)}")(
        i.make_token(COMPANY)
    ),
    # Five characters off leaves a length no base64url string has, whatever the signature bytes.
    "signature-truncated": lambda i: i.make_token(COMPANY)[:-5],
    "signature-empty": lambda i: i.make_token(COMPANY).rpartition(".")[0] + ".",
    "signature-of-other-token": lambda i: (lambda a, b: f"{a.rpartition('.')[0]}.{b.rpartition('.')[2]}")(
        i.make_token(COMPANY), i.make_token(COMPANY, scopes=["admin"])
    ),
    # Non-canonical encodings.
    "signature-padded": lambda i: i.make_token(COMPANY) + "==",
    "payload-padded-resigned": lambda i: i.sign_segments(
        enc(i.default_header()), enc(i.claims(COMPANY, x="ab")) + "=" * (-len(enc(i.claims(COMPANY, x="ab"))) % 4 or 4)
    ),
    "signature-standard-alphabet": lambda i: _swap_alphabet(i.make_token(COMPANY)),
    "signature-junk-inserted": lambda i: (lambda t: t[:-20] + "~" + t[-20:])(i.make_token(COMPANY)),
    "payload-junk-inserted": lambda i: (lambda t: t.replace(".", ".~", 1))(i.make_token(COMPANY)),
    "signature-trailing-bits": lambda i: (
        lambda t: f"{t.rpartition('.')[0]}.{_bump_trailing_bits(t.rpartition('.')[2])}"
    )(i.make_token(COMPANY)),
    "payload-trailing-bits-resigned": lambda i: (
        lambda p: i.sign_segments(enc(i.default_header()), _bump_trailing_bits(p))
    )(next(enc(i.claims(COMPANY, x="a" * n)) for n in range(4) if len(enc(i.claims(COMPANY, x="a" * n))) % 4 == 2)),
    "header-trailing-bits-resigned": lambda i: (
        lambda h: i.sign_segments(_bump_trailing_bits(h), enc(i.claims(COMPANY)))
    )(
        next(
            enc({**i.default_header(), "x": "a" * n})
            for n in range(4)
            if len(enc({**i.default_header(), "x": "a" * n})) % 4 in (2, 3)
        )
    ),
    "length-1-mod-4-segment": lambda i: (lambda t: f"{t.rpartition('.')[0]}.{t.rpartition('.')[2]}AAA")(
        i.make_token(COMPANY)
    ),
    # Structure.
    "two-segments": lambda i: i.make_token(COMPANY).rpartition(".")[0],
    "four-segments": lambda i: i.make_token(COMPANY) + ".e30",
    "five-segments-jwe": lambda i: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
    "empty-segments": lambda i: "..",
    "one-segment": lambda i: "abc",
    "oversized": lambda i: i.make_token(COMPANY, filler="a" * 17000),
    "deep-nesting": lambda i: i.make_token(COMPANY, deep=_deep(200)),
    "very-deep-nesting": lambda i: _raw_payload(i, b"[" * 5000 + b"]" * 5000),
    "header-not-object": lambda i: i.sign_segments(enc(["RS256"]), enc(i.claims(COMPANY))),
    "header-not-json": lambda i: i.sign_segments(b64("not json"), enc(i.claims(COMPANY))),
    "payload-not-object": lambda i: _raw_payload(i, b'["iss"]'),
    "payload-empty": lambda i: _raw_payload(i, b""),
    # Strict JSON.
    "duplicate-claim": lambda i: _raw_claims_json(i, ('"gty":', '"azp":"someone-else","gty":')),
    "duplicate-company": lambda i: _raw_claims_json(
        i, ('{"companyId":', f'{{"companyId":"{uuid.uuid4()}","companyId":')
    ),
    "duplicate-header-alg": lambda i: i.sign_segments(
        b64(f'{{"alg":"none","alg":"RS256","kid":"{i.kid}"}}'), enc(i.claims(COMPANY))
    ),
    "exp-NaN": lambda i: _raw_claims_json(i, ('"exp":', '"exp":NaN,"x":')),
    "exp-Infinity": lambda i: _raw_claims_json(i, ('"exp":', '"exp":Infinity,"x":')),
    "exp-1e999": lambda i: _raw_claims_json(i, ('"exp":', '"exp":1e999,"x":')),
    "payload-bom": lambda i: _raw_payload(i, b"\xef\xbb\xbf" + json.dumps(i.claims(COMPANY)).encode()),
    "header-bom": lambda i: i.sign_segments(
        b64(b"\xef\xbb\xbf" + json.dumps(i.default_header()).encode()), enc(i.claims(COMPANY))
    ),
    "payload-latin-1": lambda i: _raw_payload(
        i, json.dumps(i.claims(COMPANY, x="é"), ensure_ascii=False).encode("latin-1")
    ),
    "payload-utf-16": lambda i: _raw_payload(i, json.dumps(i.claims(COMPANY)).encode("utf-16")),
    "payload-trailing-garbage": lambda i: _raw_payload(i, json.dumps(i.claims(COMPANY)).encode() + b"x"),
    # Issuer and audience.
    "iss-missing": lambda i: i.make_token(COMPANY, iss=MISSING),
    "iss-other": lambda i: i.make_token(COMPANY, iss="https://attacker.example/"),
    "iss-without-trailing-slash": lambda i: i.make_token(COMPANY, iss=i.issuer.rstrip("/")),
    "iss-list": lambda i: i.make_token(COMPANY, iss=[i.issuer]),
    "aud-missing": lambda i: i.make_token(COMPANY, aud=MISSING),
    "aud-other": lambda i: i.make_token(COMPANY, aud="https://other.example"),
    "aud-list-without-ours": lambda i: i.make_token(COMPANY, aud=["https://a.example", "https://b.example"]),
    "aud-empty-list": lambda i: i.make_token(COMPANY, aud=[]),
    "aud-list-with-int": lambda i: i.make_token(COMPANY, aud=[i.audience, 1]),
    "aud-int": lambda i: i.make_token(COMPANY, aud=1),
    "aud-null": lambda i: i.make_token(COMPANY, aud=None),
    "aud-object": lambda i: i.make_token(COMPANY, aud={"aud": i.audience}),
    "aud-prefix": lambda i: i.make_token(COMPANY, aud=i.audience + "/extra"),
    # Times.
    "exp-missing": lambda i: i.make_token(COMPANY, exp=MISSING),
    "exp-past": lambda i: i.make_token(COMPANY, lifetime=-3600),
    "exp-past-beyond-leeway": lambda i: i.make_token(COMPANY, lifetime=-31),
    "exp-string": lambda i: i.make_token(COMPANY, exp="4102444800"),
    "exp-true": lambda i: i.make_token(COMPANY, exp=True),
    "exp-null": lambda i: i.make_token(COMPANY, exp=None),
    "exp-list": lambda i: i.make_token(COMPANY, exp=[4102444800]),
    "exp-float-past": lambda i: i.make_token(COMPANY, exp=1000000000.5),
    "nbf-future": lambda i: i.make_token(COMPANY, nbf=4102444800),
    "nbf-string": lambda i: i.make_token(COMPANY, nbf="0"),
    "nbf-bool": lambda i: i.make_token(COMPANY, nbf=False),
    "iat-future": lambda i: i.make_token(COMPANY, iat=4102444800),
    "iat-string": lambda i: i.make_token(COMPANY, iat="0"),
    "iat-null": lambda i: i.make_token(COMPANY, iat=None),
    # Grant type, client and subject.
    "gty-missing": lambda i: i.make_token(COMPANY, gty=MISSING),
    "gty-password": lambda i: i.make_token(COMPANY, gty="password"),
    "gty-int": lambda i: i.make_token(COMPANY, gty=1),
    "gty-list": lambda i: i.make_token(COMPANY, gty=["client-credentials"]),
    "azp-missing": lambda i: i.make_token(COMPANY, azp=MISSING),
    "azp-int": lambda i: i.make_token(COMPANY, azp=1, sub="1@clients"),
    "azp-empty": lambda i: i.make_token(COMPANY, client_id=""),
    "azp-control-char": lambda i: i.make_token(COMPANY, client_id="abc\ndef"),
    "sub-mismatch": lambda i: i.make_token(COMPANY, sub="someone-else@clients"),
    "sub-missing": lambda i: i.make_token(COMPANY, sub=MISSING),
    "sub-without-suffix": lambda i: i.make_token(COMPANY, sub="test-client"),
    "sub-int": lambda i: i.make_token(COMPANY, sub=1),
    # Tenant claims.
    "metadata-missing": lambda i: i.make_token(COMPANY, **{METADATA: MISSING}),
    "metadata-empty": lambda i: i.make_token(None),
    "metadata-string": lambda i: i.make_token(COMPANY, **{METADATA: str(COMPANY)}),
    "metadata-list": lambda i: i.make_token(COMPANY, **{METADATA: [{"companyId": str(COMPANY)}]}),
    "metadata-null": lambda i: i.make_token(COMPANY, **{METADATA: None}),
    "metadata-other-namespace": lambda i: i.make_token(
        None, **{"https://auth.cobee.io/metadata/": {"companyId": str(COMPANY)}}
    ),
    "companyId-missing": lambda i: i.make_token(None, CORPORATION),
    "companyId-not-uuid": lambda i: i.make_token("not-a-uuid"),
    "companyId-uppercase": lambda i: i.make_token(str(COMPANY).upper()),
    "companyId-no-hyphens": lambda i: i.make_token(COMPANY.hex),
    "companyId-braces": lambda i: i.make_token("{" + str(COMPANY) + "}"),
    "companyId-urn": lambda i: i.make_token(COMPANY.urn),
    "companyId-int": lambda i: i.make_token(None, **{METADATA: {"companyId": COMPANY.int}}),
    "companyId-bool": lambda i: i.make_token(None, **{METADATA: {"companyId": True}}),
    "companyId-null": lambda i: i.make_token(None, **{METADATA: {"companyId": None}}),
    "companyId-empty": lambda i: i.make_token(""),
    "companyId-list": lambda i: i.make_token(None, **{METADATA: {"companyId": [str(COMPANY)]}}),
    "companyId-padded": lambda i: i.make_token(f" {COMPANY}"),
    "corporationId-not-uuid": lambda i: i.make_token(COMPANY, "acme"),
    "corporationId-uppercase": lambda i: i.make_token(COMPANY, str(CORPORATION).upper()),
    "corporationId-int": lambda i: i.make_token(None, **{METADATA: {"companyId": str(COMPANY), "corporationId": 7}}),
    "corporationId-null": lambda i: i.make_token(
        None, **{METADATA: {"companyId": str(COMPANY), "corporationId": None}}
    ),
    # Scopes.
    "scope-list": lambda i: i.make_token(COMPANY, scope=["read:employees"]),
    "scope-int": lambda i: i.make_token(COMPANY, scope=1),
    "scope-double-space": lambda i: i.make_token(COMPANY, scope="read:employees  write:employees"),
    "scope-leading-space": lambda i: i.make_token(COMPANY, scope=" read:employees"),
    "scope-quote": lambda i: i.make_token(COMPANY, scope='read:"employees'),
    "permissions-string": lambda i: i.make_token(COMPANY, permissions="read:employees"),
    "permissions-with-int": lambda i: i.make_token(COMPANY, permissions=["read:employees", 1]),
}

EXPECTED_REASON = {
    "PS256-with-trusted-key": "alg_not_allowed",
    "RS384-with-trusted-key": "alg_not_allowed",
    "RS512-with-trusted-key": "alg_not_allowed",
    "alg-ES256": "alg_not_allowed",
    "alg-NONE": "alg_not_allowed",
    "alg-None": "alg_not_allowed",
    "alg-list": "alg_not_allowed",
    "alg-lowercase-rs256": "alg_not_allowed",
    "alg-missing": "alg_not_allowed",
    "alg-nOnE": "alg_not_allowed",
    "alg-none": "alg_not_allowed",
    "alg-none-with-rsa-signature": "alg_not_allowed",
    "alg-null": "alg_not_allowed",
    "attacker-key-with-trusted-kid": "bad_signature",
    "aud-empty-list": "bad_audience",
    "aud-int": "bad_audience",
    "aud-list-with-int": "bad_audience",
    "aud-list-without-ours": "bad_audience",
    "aud-missing": "bad_audience",
    "aud-null": "bad_audience",
    "aud-object": "bad_audience",
    "aud-other": "bad_audience",
    "aud-prefix": "bad_audience",
    "azp-control-char": "bad_client",
    "azp-empty": "bad_client",
    "azp-int": "bad_client",
    "azp-missing": "bad_client",
    "b64-false": "forbidden_header",
    "companyId-bool": "bad_company",
    "companyId-braces": "bad_company",
    "companyId-empty": "bad_company",
    "companyId-int": "bad_company",
    "companyId-list": "bad_company",
    "companyId-missing": "bad_company",
    "companyId-no-hyphens": "bad_company",
    "companyId-not-uuid": "bad_company",
    "companyId-null": "bad_company",
    "companyId-padded": "bad_company",
    "companyId-uppercase": "bad_company",
    "companyId-urn": "bad_company",
    "corporationId-int": "bad_corporation",
    "corporationId-not-uuid": "bad_corporation",
    "corporationId-null": "bad_corporation",
    "corporationId-uppercase": "bad_corporation",
    "crit": "forbidden_header",
    "deep-nesting": "bad_json",
    "duplicate-claim": "bad_json",
    "duplicate-company": "bad_json",
    "duplicate-header-alg": "bad_json",
    "embedded-jwk-attacker-key": "embedded_key",
    "embedded-jwk-trusted-kid": "embedded_key",
    "empty-segments": "bad_json",
    "exp-1e999": "bad_json",
    "exp-Infinity": "bad_json",
    "exp-NaN": "bad_json",
    "exp-float-past": "expired",
    "exp-list": "bad_time_claim",
    "exp-missing": "missing_exp",
    "exp-null": "bad_time_claim",
    "exp-past": "expired",
    "exp-past-beyond-leeway": "expired",
    "exp-string": "bad_time_claim",
    "exp-true": "bad_time_claim",
    "five-segments-jwe": "malformed_token",
    "four-segments": "malformed_token",
    "gty-int": "bad_grant_type",
    "gty-list": "bad_grant_type",
    "gty-missing": "bad_grant_type",
    "gty-password": "bad_grant_type",
    "header-bom": "bad_json",
    "header-not-json": "bad_json",
    "header-not-object": "bad_json",
    "header-trailing-bits-resigned": "bad_encoding",
    "hs256-keyed-with-jwk-json": "alg_not_allowed",
    "hs256-keyed-with-jwks-json": "alg_not_allowed",
    "hs256-keyed-with-public-pem": "alg_not_allowed",
    "iat-future": "issued_in_future",
    "iat-null": "bad_time_claim",
    "iat-string": "bad_time_claim",
    "iss-list": "bad_issuer",
    "iss-missing": "bad_issuer",
    "iss-other": "bad_issuer",
    "iss-without-trailing-slash": "bad_issuer",
    "jku": "embedded_key",
    "kid-empty": "missing_kid",
    "kid-int": "missing_kid",
    "kid-list": "missing_kid",
    "kid-missing": "missing_kid",
    "kid-null": "missing_kid",
    "kid-unknown": "unknown_kid",
    "length-1-mod-4-segment": "bad_encoding",
    "metadata-empty": "bad_metadata",
    "metadata-list": "bad_metadata",
    "metadata-missing": "bad_metadata",
    "metadata-null": "bad_metadata",
    "metadata-other-namespace": "bad_metadata",
    "metadata-string": "bad_metadata",
    "nbf-bool": "bad_time_claim",
    "nbf-future": "not_yet_valid",
    "nbf-string": "bad_time_claim",
    "one-segment": "malformed_token",
    "oversized": "too_large",
    "payload-bom": "bad_json",
    "payload-empty": "bad_json",
    "payload-junk-inserted": "malformed_token",
    "payload-latin-1": "bad_json",
    "payload-not-object": "bad_json",
    "payload-padded-resigned": "malformed_token",
    "payload-tampered": "bad_signature",
    "payload-trailing-bits-resigned": "bad_encoding",
    "payload-trailing-garbage": "bad_json",
    "payload-utf-16": "bad_json",
    "permissions-string": "bad_scope",
    "permissions-with-int": "bad_scope",
    "scope-double-space": "bad_scope",
    "scope-int": "bad_scope",
    "scope-leading-space": "bad_scope",
    "scope-list": "bad_scope",
    "scope-quote": "bad_scope",
    "signature-empty": "bad_signature",
    "signature-flipped": "bad_signature",
    "signature-junk-inserted": "malformed_token",
    "signature-of-other-token": "bad_signature",
    "signature-padded": "malformed_token",
    "signature-standard-alphabet": "malformed_token",
    "signature-trailing-bits": "bad_encoding",
    "signature-truncated": "bad_encoding",
    "sub-int": "bad_subject",
    "sub-mismatch": "bad_subject",
    "sub-missing": "bad_subject",
    "sub-without-suffix": "bad_subject",
    "two-segments": "malformed_token",
    "typ-JOSE": "bad_typ",
    "typ-int": "bad_typ",
    "very-deep-nesting": "bad_json",
    "x5c": "embedded_key",
    "x5u": "embedded_key",
}


def test_every_bad_token_has_an_expected_reason():
    assert set(EXPECTED_REASON) == set(BAD_TOKENS)


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_token_is_rejected(auth_settings, token_issuer, case):
    token = BAD_TOKENS[case](token_issuer)
    reasons = []

    def receiver(sender, reason, **kwargs):
        reasons.append(reason)

    signals.token_rejected.connect(receiver)
    try:
        assert_rejected(get(token), token)
    finally:
        signals.token_rejected.disconnect(receiver)
    assert reasons == [EXPECTED_REASON[case]]
    # The same token stays rejected (nothing cached), and a good token still works right after.
    assert get(token).status_code in (400, 401)
    assert get(token_issuer.make_token(COMPANY)).status_code == 200


def test_client_allow_list(auth_settings, token_issuer, settings):
    settings.COBEE_DJANGO = {**auth_settings, "ALLOWED_CLIENTS": ["good-client"]}
    assert get(token_issuer.make_token(COMPANY, client_id="good-client")).status_code == 200
    token = token_issuer.make_token(COMPANY, client_id="other-client")
    assert_rejected(get(token), token)


def test_rfc9068_tokens_when_auth0_rules_are_off(auth_settings, token_issuer, settings):
    settings.COBEE_DJANGO = {**auth_settings, "AUTH0_CLAIMS": False, "ALLOWED_GRANT_TYPES": None}
    token = token_issuer.make_token(COMPANY, sub="client-1", client_id="client-1", gty=MISSING, azp=MISSING)
    assert get(token).status_code == 401  # no client_id claim and no azp
    token = token_issuer.make_token(COMPANY, sub="client-1", azp=MISSING, gty=MISSING, client_id_claim=None)
    token = token_issuer.sign(
        {**token_issuer.claims(COMPANY, sub="client-1", azp=MISSING, gty=MISSING), "client_id": "client-1"}
    )
    assert get(token).json()["client_id"] == "client-1"


def test_rejections_are_logged_once_without_the_token(auth_settings, token_issuer, caplog):
    token = token_issuer.make_token(COMPANY, lifetime=-3600, client_id="logged-client")
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    signals.token_rejected.connect(receiver)
    try:
        with caplog.at_level(logging.INFO, logger="cobee_django"):
            get(token, HTTP_X_REQUEST_ID="req-123")
    finally:
        signals.token_rejected.disconnect(receiver)
    records = [r for r in caplog.records if getattr(r, "event", None) == "token_rejected"]
    assert len(records) == 1
    (record,) = records
    assert record.reason == "expired" and record.client_id == "logged-client" and record.request_id == "req-123"
    assert record.exc_info is None
    text = caplog.text
    for segment in token.split("."):
        assert segment not in text
    assert [(r["reason"], r["client_id"], r["request_id"]) for r in received] == [
        ("expired", "logged-client", "req-123")
    ]


def test_forged_token_names_no_client(auth_settings, token_issuer, caplog):
    token = _attacker(token_issuer, kid=token_issuer.kid).make_token(COMPANY, client_id="victim")
    with caplog.at_level(logging.INFO, logger="cobee_django"):
        get(token, HTTP_X_REQUEST_ID="bad id with spaces")
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "token_rejected"]
    assert record.reason == "bad_signature" and record.levelno == logging.WARNING
    assert record.client_id is None and record.request_id is None


def test_accepted_signal(auth_settings, token_issuer):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    signals.token_accepted.connect(receiver)
    try:
        get(token_issuer.make_token(COMPANY, client_id="c1"))
    finally:
        signals.token_accepted.disconnect(receiver)
    assert len(received) == 1
    assert received[0]["principal"].client_id == "c1"
    assert received[0]["token"].principal is received[0]["principal"]


def test_failing_signal_receiver_does_not_break_authentication(auth_settings, token_issuer):
    def broken(sender, **kwargs):
        raise RuntimeError("boom")

    signals.token_rejected.connect(broken)
    try:
        assert get("x.y.z").status_code == 401
    finally:
        signals.token_rejected.disconnect(broken)


@override_settings()
def test_several_issuers_each_with_their_own_keys(auth_settings, token_issuer, jwks_server, settings, rsa_key):
    staging = TokenIssuer(issuer=jwks_server.url("/staging/"), audience="https://staging.api")
    jwks_server.serve(staging, path="/staging/.well-known/jwks.json")
    settings.COBEE_DJANGO = {
        "ISSUERS": [
            {"ISSUER": token_issuer.issuer, "AUDIENCE": token_issuer.audience},
            {"ISSUER": staging.issuer, "AUDIENCE": "https://staging.api"},
        ],
        "JWKS_CACHE_ALIAS": None,
    }
    assert get(token_issuer.make_token(COMPANY)).json()["issuer"] == token_issuer.issuer
    assert get(staging.make_token(COMPANY)).json()["issuer"] == staging.issuer
    # A token signed by one issuer's key but claiming the other issuer is refused.
    assert get(staging.make_token(COMPANY, iss=token_issuer.issuer, aud=token_issuer.audience)).status_code == 401
    # Audiences are per issuer.
    assert get(staging.make_token(COMPANY, aud=token_issuer.audience)).status_code == 401


def test_installed_key_set_needs_no_http(settings, rsa_key):
    from cobee_django.testing import trust

    issuer = TokenIssuer(issuer="https://tenant.example/", audience="https://api.example", key=rsa_key)
    settings.COBEE_DJANGO = {"ISSUER": issuer.issuer, "AUDIENCE": issuer.audience}
    with trust(issuer):
        token = issuer.make_token(COMPANY)
        assert get(token).json()["company_id"] == str(COMPANY)
    # Without the installed set the key set must be fetched, and tenant.example is not reachable.
    settings.COBEE_DJANGO = {"ISSUER": issuer.issuer, "AUDIENCE": issuer.audience, "JWKS_TIMEOUT": 0.5}
    assert get(issuer.make_token(COMPANY)).status_code == 503


def test_one_authenticator_per_class_and_realm_sends_as_that_class(auth_settings):
    """DRF builds the class anew per request; the authenticator behind it is built once and names it."""
    from cobee_django.authentication import JWTAuthentication
    from cobee_django.credentials import RequestAuthenticator

    class Partners(JWTAuthentication):
        www_authenticate_realm = "partners"

    class Custom(RequestAuthenticator):
        pass

    class WithCustom(JWTAuthentication):
        authenticator_class = Custom

    class Named(JWTAuthentication):
        pass

    shared = JWTAuthentication().get_authenticator()
    assert JWTAuthentication().get_authenticator() is shared
    assert type(shared) is RequestAuthenticator and shared.sender is JWTAuthentication and shared.realm is None
    partners = Partners().get_authenticator()
    assert Partners().get_authenticator() is partners is not shared
    assert partners.sender is Partners and partners.realm == "partners"
    assert Partners().authenticate_header(None) == 'Bearer realm="partners"'
    custom = WithCustom().get_authenticator()
    assert type(custom) is Custom and custom.sender is WithCustom and custom.realm is None
    named = Named().get_authenticator()  # same class and realm, another sender
    assert named is not shared and named.sender is Named


def test_get_user_maps_the_request_and_its_validated_token(auth_settings, token_issuer):
    from rest_framework.test import APIRequestFactory

    from cobee_django.authentication import JWTAuthentication

    class Mapped(JWTAuthentication):
        def get_user(self, request, validated):
            return ("user-of", request, validated)

    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token_issuer.make_token(COMPANY)}")
    user, validated = Mapped().authenticate(request)
    assert user == ("user-of", request, validated)
    assert validated.principal.company_id == COMPANY
    assert Mapped().authenticate(APIRequestFactory().get("/")) is None
