"""verify_token: claims, the validated-token cache and the testing issuer, with installed key sets."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest

from cobee_django import tokens
from cobee_django.exceptions import CobeeDjangoError
from cobee_django.principal import ClientPrincipal
from cobee_django.reasons import TokenRejected
from cobee_django.testing import MISSING, TokenIssuer, install_key_set, uninstall_key_set
from cobee_django.tokens import ValidatedToken, verify_token

ISSUER = "https://tenant.example/"
AUDIENCE = "https://api.example"
COMPANY = uuid.UUID("5e9e9701-9883-447d-9884-46e75993e33b")
CORPORATION = uuid.UUID("0b7f3c55-3c1e-4a8e-9a57-1f2d8e0c9a11")


@pytest.fixture
def issuer(settings, rsa_key):
    settings.COBEE_DJANGO = {"ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "JWKS_CACHE_ALIAS": None}
    token_issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE, key=rsa_key)
    install_key_set(ISSUER, token_issuer.jwks())
    yield token_issuer
    uninstall_key_set()


def rejected(token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        verify_token(token)
    return info.value.reason.value


def test_validated_token_holds_the_principal(issuer):
    token = issuer.make_token(COMPANY, CORPORATION, scopes=["read:employees"], client_id="client-a")
    validated = verify_token(token)
    assert isinstance(validated, ValidatedToken)
    principal = validated.principal
    assert isinstance(principal, ClientPrincipal)
    assert (principal.client_id, principal.company_id, principal.corporation_id) == ("client-a", COMPANY, CORPORATION)
    assert principal.scopes == {"read:employees"} and principal.issuer == ISSUER
    assert principal.is_authenticated and principal.pk == f"{ISSUER}#client-a"
    assert validated.claims["azp"] == "client-a" and validated.header["kid"] == issuer.kid
    assert validated.issuer.issuer == ISSUER and validated.expires_at == validated.claims["exp"]
    assert token not in repr(validated)
    with pytest.raises(dataclasses.FrozenInstanceError):
        validated.expires_at = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        validated.claims["azp"] = "someone-else"  # type: ignore[index]


def test_cache_answers_a_token_seen_before(issuer):
    token = issuer.make_token(COMPANY)
    assert verify_token(token) is verify_token(token)
    assert tokens.get_verifier().cached_tokens == 1


def test_cache_is_keyed_by_the_whole_token(issuer):
    token = issuer.make_token(COMPANY)
    verify_token(token)
    head, _, signature = token.rpartition(".")
    assert rejected(f"{head}.{signature[:-4]}AAAA") == "bad_signature"


class Clock:
    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


def test_cache_never_serves_a_token_past_exp(issuer, settings, monkeypatch):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "LEEWAY": 0}
    token = issuer.make_token(COMPANY, lifetime=60)
    assert verify_token(token) is verify_token(token)
    monkeypatch.setattr(tokens, "time", Clock(61))
    assert rejected(token) == "expired"


def test_cache_is_bounded(issuer, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "TOKEN_CACHE_SIZE": 3}
    batch = [issuer.make_token(COMPANY, jti=str(n)) for n in range(5)]
    first = [verify_token(token) for token in batch]
    verifier = tokens.get_verifier()
    assert verifier.cached_tokens == 3
    assert verify_token(batch[4]) is first[4]
    assert verify_token(batch[0]) is not first[0]  # evicted, verified again
    assert verifier.cached_tokens <= 3
    for n in range(20):
        verify_token(issuer.make_token(COMPANY, jti=f"more-{n}"))
        assert verifier.cached_tokens <= 3


def test_cache_can_be_turned_off(issuer, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "TOKEN_CACHE_SIZE": 0}
    token = issuer.make_token(COMPANY)
    assert verify_token(token) is not verify_token(token)
    assert tokens.get_verifier().cached_tokens == 0


def test_replacing_the_keys_invalidates_cached_tokens(issuer, rsa_key):
    token = issuer.make_token(COMPANY)
    verify_token(token)
    other = TokenIssuer(issuer=ISSUER, audience=AUDIENCE)
    install_key_set(ISSUER, other.jwks())
    assert rejected(token) == "unknown_kid"


def test_settings_change_drops_the_cache(issuer, settings):
    token = issuer.make_token(COMPANY)
    verify_token(token)
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "AUDIENCE": "https://another.api"}
    assert rejected(token) == "bad_audience"


@pytest.mark.parametrize(("leeway", "offset", "ok"), [(0, -1, False), (30, -29, True), (30, -31, False)])
def test_leeway_on_exp(issuer, settings, leeway, offset, ok):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "LEEWAY": leeway}
    token = issuer.make_token(COMPANY, exp=int(time.time()) + offset)
    if ok:
        assert verify_token(token)
    else:
        assert rejected(token) == "expired"


def test_leeway_is_not_a_maximum_age(issuer):
    # Auth0 tokens live 24 hours: an old iat is fine as long as exp is ahead.
    assert verify_token(issuer.make_token(COMPANY, iat=int(time.time()) - 20 * 3600))


def test_grant_types_can_be_opened(issuer, settings):
    assert rejected(issuer.make_token(COMPANY, gty=MISSING)) == "bad_grant_type"
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ALLOWED_GRANT_TYPES": None}
    assert verify_token(issuer.make_token(COMPANY, gty=MISSING))
    assert verify_token(issuer.make_token(COMPANY, gty="password"))
    assert rejected(issuer.make_token(COMPANY, gty=1)) == "bad_grant_type"


def test_rfc9068_mode(issuer, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "AUTH0_CLAIMS": False}
    claims = issuer.claims(COMPANY, sub="client-x", azp=MISSING)
    assert verify_token(issuer.sign({**claims, "client_id": "client-x"})).client_id == "client-x"
    assert verify_token(issuer.make_token(COMPANY, sub="whatever", client_id="c2")).client_id == "c2"
    assert rejected(issuer.sign({**claims, "client_id": "a", "azp": "b"})) == "bad_client"
    assert rejected(issuer.sign(claims)) == "bad_client"


def test_unexpected_errors_are_still_rejections(issuer, monkeypatch):
    def explode(token):
        raise RecursionError("deep")

    monkeypatch.setattr(tokens.get_verifier().parser, "parse", explode)
    assert rejected(issuer.make_token(COMPANY)) == "verification_error"


def test_rejection_after_the_signature_names_the_client(issuer):
    with pytest.raises(TokenRejected) as info:
        verify_token(issuer.make_token(COMPANY, client_id="known", aud="https://elsewhere"))
    assert info.value.client_id == "known"
    with pytest.raises(TokenRejected) as info:
        verify_token(TokenIssuer(issuer=ISSUER, audience=AUDIENCE, kid=issuer.kid).make_token(COMPANY))
    assert info.value.client_id is None


# --- the testing issuer -------------------------------------------------------------------------------


def test_token_issuer_makes_exactly_auth0_m2m_claims(rsa_key):
    issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE, key=rsa_key, client_id="abc")
    claims = issuer.claims(COMPANY, CORPORATION, scopes=["a", "b"], lifetime=100)
    assert set(claims) == {"iss", "sub", "aud", "iat", "exp", "scope", "gty", "azp", "https://auth.cobee.io/metadata"}
    assert claims["sub"] == "abc@clients" and claims["azp"] == "abc" and claims["gty"] == "client-credentials"
    assert claims["exp"] - claims["iat"] == 100 and claims["scope"] == "a b"
    assert claims["https://auth.cobee.io/metadata"] == {"companyId": str(COMPANY), "corporationId": str(CORPORATION)}


def test_token_issuer_persists_its_key(rsa_key):
    issuer = TokenIssuer(issuer=ISSUER, audience=AUDIENCE, key=rsa_key)
    again = TokenIssuer.from_pem(issuer.private_key_pem(), issuer=ISSUER, audience=AUDIENCE)
    assert again.kid == issuer.kid and again.jwks() == issuer.jwks()
    assert set(issuer.public_jwk) == {"kty", "n", "e", "kid", "use", "alg"}
    assert TokenIssuer(issuer=ISSUER, audience=AUDIENCE).kid != issuer.kid


def test_install_key_set_refuses_a_set_without_usable_keys(settings):
    settings.COBEE_DJANGO = {"ISSUER": ISSUER, "AUDIENCE": AUDIENCE}
    with pytest.raises(CobeeDjangoError):
        install_key_set(ISSUER, {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]})
