"""verify_token: claims, the validated-token cache and the testing issuer, with installed key sets."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest

from cobee_django import tokens
from cobee_django.exceptions import CobeeDjangoError, Reason, TokenRejected
from cobee_django.principal import ClientPrincipal
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
    with pytest.raises(TokenRejected) as info:
        verify_token(issuer.make_token(COMPANY))
    # The log record names what slipped past the rules (the client only ever sees the constant 401).
    assert info.value.reason is Reason.VERIFICATION_ERROR and str(info.value) == "RecursionError"


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


# --- edges of the claim rules (each test fails when its check is removed or moved by one) -----------


class FrozenClock:
    """``time`` for the verifier, stopped at ``now``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def frozen(issuer, settings, monkeypatch):
    """The verifier's clock stopped at a whole second, with no leeway unless a test sets one."""
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "LEEWAY": 0, "TOKEN_CACHE_SIZE": 0}
    clock = FrozenClock(float(int(time.time())))
    monkeypatch.setattr(tokens, "time", clock)
    return clock


def reason_of(token: str) -> Reason:
    with pytest.raises(TokenRejected) as info:
        verify_token(token)
    return info.value.reason


@pytest.mark.parametrize("leeway", [0, 30])
def test_exp_boundary_with_a_frozen_clock(issuer, settings, frozen, leeway):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "LEEWAY": leeway}
    now = frozen.now
    # Expired from the instant now reaches exp + leeway (RFC 7519 section 4.1.4: "on or after").
    assert reason_of(issuer.make_token(COMPANY, exp=int(now) - leeway)) is Reason.EXPIRED
    assert verify_token(issuer.make_token(COMPANY, exp=int(now) - leeway + 1)).expires_at == now - leeway + 1
    assert verify_token(issuer.make_token(COMPANY, exp=now - leeway + 0.5))


@pytest.mark.parametrize(("claim", "refusal"), [("nbf", Reason.NOT_YET_VALID), ("iat", Reason.ISSUED_IN_FUTURE)])
@pytest.mark.parametrize("leeway", [0, 30])
def test_nbf_and_iat_boundaries_with_a_frozen_clock(issuer, settings, frozen, claim, refusal, leeway):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "LEEWAY": leeway}
    now = int(frozen.now)

    def token(at: float) -> str:
        return issuer.make_token(COMPANY, **{"iat": now - 60, claim: at})

    # Accepted up to and including now + leeway; refused one second (or half of one) after.
    assert verify_token(token(now + leeway))
    assert reason_of(token(now + leeway + 1)) is refusal
    assert reason_of(token(now + leeway + 0.5)) is refusal


def test_fractional_numeric_dates_are_accepted(issuer, frozen):
    now = frozen.now
    validated = verify_token(issuer.make_token(COMPANY, nbf=now - 10.5, iat=now - 10.25, exp=now + 60.75))
    assert validated.expires_at == now + 60.75
    assert (validated.claims["nbf"], validated.claims["iat"]) == (now - 10.5, now - 10.25)


@pytest.mark.parametrize("value", [True, "1700000000", None, [1], {"t": 1}])
@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_nbf_and_iat_must_be_numeric_dates(issuer, claim, value):
    assert reason_of(issuer.make_token(COMPANY, **{claim: value})) is Reason.BAD_TIME_CLAIM


def test_a_token_without_scope_has_no_scopes(issuer):
    validated = verify_token(issuer.make_token(COMPANY, scope=MISSING))
    assert "scope" not in validated.claims
    assert validated.scopes == frozenset() and validated.principal.scopes == frozenset()


def test_an_empty_scope_is_the_empty_set(issuer):
    assert verify_token(issuer.make_token(COMPANY, scope="")).scopes == frozenset()
    assert verify_token(issuer.make_token(COMPANY, scope="", permissions=["read:x"])).scopes == {"read:x"}
    assert verify_token(issuer.make_token(COMPANY, scope="a b", permissions=[])).scopes == {"a", "b"}


def test_a_remembered_scope_string_answers_only_for_tokens_without_permissions(issuer):
    """A client's scope string is parsed once; permissions and malformed strings never use the memory."""
    assert verify_token(issuer.make_token(COMPANY, scope="read:a write:a")).scopes == {"read:a", "write:a"}
    assert verify_token(issuer.make_token(COMPANY, scope="read:a write:a")).scopes == {"read:a", "write:a"}
    with_permissions = issuer.make_token(COMPANY, scope="read:a write:a", permissions=["read:b"])
    assert verify_token(with_permissions).scopes == {"read:a", "write:a", "read:b"}
    assert verify_token(issuer.make_token(COMPANY, scope="read:a write:a")).scopes == {"read:a", "write:a"}
    for _ in range(2):  # a refused string is never remembered as valid
        assert reason_of(issuer.make_token(COMPANY, scope="read:a  write:a")) is Reason.BAD_SCOPE
    assert reason_of(issuer.make_token(COMPANY, scope="read:a write:a", permissions="read:b")) is Reason.BAD_SCOPE


def test_the_remembered_scope_strings_are_bounded(issuer):
    verifier = tokens.get_verifier()
    for n in range(tokens._UUID_CACHE_SIZE + 1):
        verifier._scopes({"scope": f"s:{n}"})
        assert len(verifier._scope_sets) <= tokens._UUID_CACHE_SIZE
    assert verifier._scopes({"scope": "s:0"}) == {"s:0"}


def test_a_validated_token_is_read_only(issuer):
    token = issuer.make_token(COMPANY, scopes=["read:employees"])
    validated = verify_token(token)
    for name in ("claims", "principal", "key_generation", "other"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(validated, name, None)
        with pytest.raises(AttributeError):
            delattr(validated, name)
    assert token not in repr(validated) and repr(validated).startswith("ValidatedToken(client_id=")


@pytest.mark.parametrize("scope", [" a", "a ", "a  b", "a\tb", 'a"b', "a\\b", 5, None, ["a"]])
def test_malformed_scope_is_refused(issuer, scope):
    assert reason_of(issuer.make_token(COMPANY, scope=scope)) is Reason.BAD_SCOPE


@pytest.mark.parametrize("permissions", ["a", [1], ["a b"], [""], {"a": 1}])
def test_malformed_permissions_are_refused(issuer, permissions):
    assert reason_of(issuer.make_token(COMPANY, permissions=permissions)) is Reason.BAD_SCOPE


def test_the_principal_carries_the_signed_claims(issuer):
    # Membership ordering reads iat from principal.claims: it is the token's claims, never None.
    validated = verify_token(issuer.make_token(COMPANY, client_id="client-c"))
    claims = validated.principal.claims
    assert claims is not None and dict(claims) == dict(validated.claims)
    assert claims["iat"] == validated.claims["iat"] and claims["azp"] == "client-c"


def test_auth0_mode_requires_the_subject_of_the_client(issuer):
    assert reason_of(issuer.make_token(COMPANY, client_id="client-a", sub="client-b@clients")) is Reason.BAD_SUBJECT
    assert reason_of(issuer.make_token(COMPANY, client_id="client-a", sub="client-a")) is Reason.BAD_SUBJECT
    assert reason_of(issuer.make_token(COMPANY, client_id="client-a", sub=MISSING)) is Reason.BAD_SUBJECT
    assert reason_of(issuer.make_token(COMPANY, azp=5)) is Reason.BAD_CLIENT
    assert reason_of(issuer.make_token(COMPANY, azp=MISSING, client_id="x")) is Reason.BAD_CLIENT


@pytest.mark.parametrize("sub", [5, None, ["client-x"], {"id": "client-x"}, True])
def test_rfc9068_mode_refuses_a_subject_that_is_not_a_string(issuer, settings, sub):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "AUTH0_CLAIMS": False}
    claims = issuer.claims(COMPANY, azp=MISSING, sub=sub)
    assert reason_of(issuer.sign({**claims, "client_id": "client-x"})) is Reason.BAD_SUBJECT
    without_sub = issuer.claims(COMPANY, azp=MISSING, sub=MISSING)
    assert verify_token(issuer.sign({**without_sub, "client_id": "client-x"})).client_id == "client-x"


def test_rfc9068_mode_takes_azp_when_there_is_no_client_id(issuer, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "AUTH0_CLAIMS": False}
    assert verify_token(issuer.make_token(COMPANY, client_id="client-z", sub="s")).client_id == "client-z"
    claims = issuer.claims(COMPANY, sub="s", azp="client-z")
    assert verify_token(issuer.sign({**claims, "client_id": "client-z"})).client_id == "client-z"
    assert reason_of(issuer.sign({**claims, "client_id": 7})) is Reason.BAD_CLIENT


def test_allowed_clients(issuer, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ALLOWED_CLIENTS": ["client-a"]}
    assert verify_token(issuer.make_token(COMPANY, client_id="client-a")).client_id == "client-a"
    with pytest.raises(TokenRejected) as info:
        verify_token(issuer.make_token(COMPANY, client_id="client-b"))
    assert info.value.reason is Reason.CLIENT_NOT_ALLOWED


def test_client_id_length_limit(issuer):
    longest = "c" * 256
    assert verify_token(issuer.make_token(COMPANY, client_id=longest)).client_id == longest
    assert reason_of(issuer.make_token(COMPANY, client_id="c" * 257)) is Reason.BAD_CLIENT
    assert reason_of(issuer.make_token(COMPANY, client_id="client\n")) is Reason.BAD_CLIENT


@pytest.mark.parametrize(
    ("aud", "ok"),
    [
        (AUDIENCE, True),
        ([AUDIENCE], True),
        (["https://other.example", AUDIENCE], True),
        (["https://other.example"], False),
        ([], False),
        ([AUDIENCE, 5], False),
        ([[AUDIENCE]], False),
        ("https://other.example", False),
        (5, False),
        ({AUDIENCE: True}, False),
        (None, False),
        (MISSING, False),
    ],
)
def test_audience_forms(issuer, aud, ok):
    token = issuer.make_token(COMPANY, aud=aud)
    if ok:
        assert verify_token(token)
    else:
        assert reason_of(token) is Reason.BAD_AUDIENCE


METADATA = "https://auth.cobee.io/metadata"


@pytest.mark.parametrize(
    ("metadata", "refusal"),
    [
        (MISSING, Reason.BAD_METADATA),
        ({}, Reason.BAD_METADATA),
        ([str(COMPANY)], Reason.BAD_METADATA),
        ({"corporationId": str(CORPORATION)}, Reason.BAD_COMPANY),
        ({"companyId": None}, Reason.BAD_COMPANY),
        ({"companyId": 5}, Reason.BAD_COMPANY),
        ({"companyId": str(COMPANY).upper()}, Reason.BAD_COMPANY),
        ({"companyId": "not-a-uuid"}, Reason.BAD_COMPANY),
        ({"companyId": str(COMPANY), "corporationId": None}, Reason.BAD_CORPORATION),
        ({"companyId": str(COMPANY), "corporationId": 5}, Reason.BAD_CORPORATION),
        ({"companyId": str(COMPANY), "corporationId": "{" + str(CORPORATION) + "}"}, Reason.BAD_CORPORATION),
    ],
)
def test_metadata_claim_refusals(issuer, metadata, refusal):
    assert reason_of(issuer.make_token(None, **{METADATA: metadata})) is refusal


def test_metadata_ids_are_parsed_and_remembered(issuer):
    first = verify_token(issuer.make_token(COMPANY, CORPORATION, jti="1"))
    again = verify_token(issuer.make_token(COMPANY, jti="2"))
    assert (first.principal.company_id, first.principal.corporation_id) == (COMPANY, CORPORATION)
    assert (again.principal.company_id, again.principal.corporation_id) == (COMPANY, None)


def test_the_cache_drops_its_older_half_when_full(issuer, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "TOKEN_CACHE_SIZE": 4}
    batch = [issuer.make_token(COMPANY, jti=str(n)) for n in range(5)]
    first = [verify_token(token) for token in batch]
    # Full at four: the two oldest went, the fifth came in.
    assert tokens.get_verifier().cached_tokens == 3
    assert [verify_token(token) is validated for token, validated in zip(batch[2:], first[2:], strict=True)] == [
        True,
        True,
        True,
    ]


@pytest.mark.parametrize(
    "iss", ["https://other.example/", ISSUER.rstrip("/"), [ISSUER], {"iss": ISSUER}, 5, None, MISSING]
)
def test_only_a_configured_issuer_string_is_accepted(issuer, iss):
    assert reason_of(issuer.make_token(COMPANY, iss=iss)) is Reason.BAD_ISSUER


def test_a_missing_exp_and_a_null_exp_have_their_own_reasons(issuer):
    assert reason_of(issuer.make_token(COMPANY, exp=MISSING)) is Reason.MISSING_EXP
    assert reason_of(issuer.make_token(COMPANY, exp=None)) is Reason.BAD_TIME_CLAIM


@pytest.mark.parametrize("exp", [True, "4102444800", [4102444800], {"t": 4102444800}])
def test_exp_must_be_a_numeric_date(issuer, exp):
    assert reason_of(issuer.make_token(COMPANY, exp=exp)) is Reason.BAD_TIME_CLAIM


def test_the_cache_stops_serving_a_token_at_its_exp(issuer, settings, frozen):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "TOKEN_CACHE_SIZE": 8}
    exp = int(frozen.now) + 10
    token = issuer.make_token(COMPANY, exp=exp)
    frozen.now = exp - 1
    assert verify_token(token) is verify_token(token)
    frozen.now = exp
    assert reason_of(token) is Reason.EXPIRED


# --- the confirmation claim (RFC 7800): a binding the verifier cannot check refuses the token ---------


@pytest.mark.parametrize(
    "cnf",
    [
        "x",
        [],
        {},
        {"x5t": "A" * 43},
        {"jkt": 5},
        {"jkt": "A" * 42},
        {"jkt": "A" * 44},
        {"x5t#S256": "A" * 42 + "="},
        {"jkt": "A" * 43, "other": "B" * 43},
        None,
    ],
)
def test_a_confirmation_claim_that_cannot_be_checked_refuses_the_token(issuer, cnf):
    assert rejected(issuer.make_token(COMPANY, cnf=cnf)) == "bad_confirmation"


@pytest.mark.parametrize(
    "cnf",
    [{"jkt": "A" * 43}, {"x5t#S256": "a-_0" * 10 + "abc"}, {"jkt": "A" * 43, "x5t#S256": "B" * 43}],
)
def test_a_well_formed_confirmation_claim_is_kept_for_the_request_checks(issuer, cnf):
    assert verify_token(issuer.make_token(COMPANY, cnf=cnf)).claims["cnf"] == cnf
