"""The framework-neutral authenticator (cobee_django.credentials) on plain Django requests, no DRF.

DRF's JWTAuthentication is built on it (tests/test_authentication.py covers the same rules through
DRF views); here each answer is pinned by its Reason, status and challenge, sync and async.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from django.core.cache import caches
from django.http import HttpResponse
from django.test import RequestFactory

from cobee_django import dpop, signals
from cobee_django.bearer import INVALID_REQUEST_DESCRIPTION, INVALID_TOKEN_DESCRIPTION
from cobee_django.credentials import BEARER, Credential, RequestAuthenticator, authenticate, error_response
from cobee_django.exceptions import (
    AuthenticationUnavailable,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    Reason,
    UseDPoPNonce,
)
from cobee_django.testing import DPoPKey
from cobee_django.tokens import ValidatedToken

COMPANY = uuid.UUID("5e9e9701-9883-447d-9884-46e75993e33b")
factory = RequestFactory()


@pytest.fixture
def issuer(cobee_issuer):
    return cobee_issuer


def with_header(value: str | None, path: str = "/", **extra):
    if value is not None:
        extra["HTTP_AUTHORIZATION"] = value
    return factory.get(path, **extra)


def test_a_valid_token_is_returned_validated(issuer):
    token = issuer.make_token(COMPANY, scopes=["read:employees"])
    validated = authenticate(with_header(f"Bearer {token}"))
    assert isinstance(validated, ValidatedToken)
    assert validated.principal.company_id == COMPANY
    assert validated.scopes == frozenset({"read:employees"})


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Basic\tdXNlcjpwYXNz",  # another scheme behind a tab is still another scheme
        "Other Bearer",  # our scheme's name as another scheme's value: only a comma starts a credential
        "Basic dXNlcjpwYXNz, XBearer abc",  # a scheme that merely contains ours
    ],
)
def test_no_credential_of_ours_is_none(issuer, header):
    assert authenticate(with_header(header)) is None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer", Reason.MALFORMED_HEADER),
        ("Bearer ", Reason.MALFORMED_HEADER),
        ("Bearer a b", Reason.MALFORMED_HEADER),
        ("Bearer a,b", Reason.MULTIPLE_CREDENTIALS),
        ("Bearer a.b.c, Basic dXNlcjpwYXNz", Reason.MULTIPLE_CREDENTIALS),
        ("Bearer  a b", Reason.MALFORMED_HEADER),
        ("Bearer a.b.c d", Reason.MALFORMED_HEADER),
        ("Bearer é.x.y", Reason.MALFORMED_HEADER),
        ("Bearer\tabc\tdef", Reason.MALFORMED_HEADER),
        ("Basic dXNlcjpwYXNz, Bearer\tabc", Reason.MULTIPLE_CREDENTIALS),
        ("Basic dXNlcjpwYXNz, Bearer\tabc\tdef", Reason.MULTIPLE_CREDENTIALS),
        ("Basic dXNlcjpwYXNz, Bearer abc def", Reason.MULTIPLE_CREDENTIALS),
    ],
)
def test_a_malformed_header_is_invalid_request(issuer, header, reason):
    with pytest.raises(InvalidRequest) as caught:
        authenticate(with_header(header))
    error = caught.value
    assert error.reason is reason
    assert error.status_code == 400
    assert error.auth_header == (
        f'Bearer realm="api", error="invalid_request", error_description="{INVALID_REQUEST_DESCRIPTION}"'
    )


def test_a_token_in_the_url_is_refused_and_with_a_header_too(issuer):
    token = issuer.make_token(COMPANY)
    with pytest.raises(InvalidRequest) as alone:
        authenticate(factory.get(f"/?access_token={token}"))
    assert alone.value.reason is Reason.TOKEN_IN_URL_OR_BODY
    with pytest.raises(InvalidRequest) as both:
        authenticate(factory.get(f"/?access_token={token}", HTTP_AUTHORIZATION=f"Bearer {token}"))
    assert both.value.reason is Reason.MULTIPLE_CREDENTIALS


@pytest.mark.parametrize("query", ["%61ccess_token={token}", "access%5Ftoken={token}", "a=1&access_token={token}"])
def test_a_token_in_a_disguised_query_parameter_is_refused(issuer, query):
    request = factory.get("/", QUERY_STRING=query.format(token=issuer.make_token(COMPANY)))
    with pytest.raises(InvalidRequest) as caught:
        authenticate(request)
    assert caught.value.reason is Reason.TOKEN_IN_URL_OR_BODY


@pytest.mark.parametrize("query", ["q=access_token", "next=%2Fhome", "access_tokens=1"])
def test_a_query_naming_no_token_parameter_is_no_credential(issuer, query):
    assert authenticate(factory.get("/", QUERY_STRING=query)) is None
    token = issuer.make_token(COMPANY)
    assert authenticate(factory.get("/", QUERY_STRING=query, HTTP_AUTHORIZATION=f"Bearer {token}")) is not None


def test_a_token_in_a_form_body_is_refused(issuer):
    token = issuer.make_token(COMPANY)
    request = factory.post("/", {"access_token": token})  # multipart: not a form-urlencoded body
    assert authenticate(request) is None
    request = factory.post("/", f"access_token={token}", content_type="application/x-www-form-urlencoded")
    with pytest.raises(InvalidRequest) as caught:
        authenticate(request)
    assert caught.value.reason is Reason.TOKEN_IN_URL_OR_BODY


def test_a_bad_token_is_invalid_token_with_its_reason(issuer):
    expired = issuer.make_token(COMPANY, exp=1, iat=0)
    with pytest.raises(InvalidToken) as caught:
        authenticate(with_header(f"Bearer {expired}"), realm="partners")
    assert caught.value.reason is Reason.EXPIRED
    assert caught.value.status_code == 401
    assert caught.value.auth_header == (
        f'Bearer realm="partners", error="invalid_token", error_description="{INVALID_TOKEN_DESCRIPTION}"'
    )


def test_an_unreachable_key_set_is_a_503_with_retry_after(settings, cobee_issuer):
    settings.COBEE_DJANGO = {
        **settings.COBEE_DJANGO,
        "ISSUER": "https://unreachable.invalid/",
        "JWKS_URL": "http://127.0.0.1:9/jwks.json",
        "JWKS_CACHE_ALIAS": None,
    }
    from cobee_django.testing import TokenIssuer

    stranger = TokenIssuer(issuer="https://unreachable.invalid/", audience=cobee_issuer.audience)
    request = with_header(f"Bearer {stranger.make_token(COMPANY)}")
    seen = []

    def receiver(sender, request, reason, client_id, **kwargs):
        seen.append((sender, request, reason, client_id))

    signals.token_rejected.connect(receiver)
    try:
        with pytest.raises(AuthenticationUnavailable) as caught:
            authenticate(request)
    finally:
        signals.token_rejected.disconnect(receiver)
    assert caught.value.reason is Reason.KEY_SET_UNAVAILABLE
    assert seen == [(RequestAuthenticator, request, Reason.KEY_SET_UNAVAILABLE.value, None)]
    response = error_response(caught.value)
    assert response.status_code == 503
    assert int(response["Retry-After"]) == caught.value.wait


def test_error_response_is_constant_json_with_the_challenge(issuer):
    with pytest.raises(InvalidToken) as caught:
        authenticate(with_header("Bearer not.a.token"))
    response = error_response(caught.value)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"detail": INVALID_TOKEN_DESCRIPTION}
    assert response["WWW-Authenticate"] == caught.value.auth_header
    assert "private" in [d.strip() for d in response["Cache-Control"].split(",")]
    assert "Authorization" in [h.strip() for h in response["Vary"].split(",")]


def test_signals_name_the_sender_and_receive_the_request(issuer):
    seen = []

    def receiver(sender, request, reason, **kwargs):
        seen.append((sender, request, reason))

    class View:
        pass

    signals.token_rejected.connect(receiver)
    try:
        request = with_header("Bearer a,b")
        with pytest.raises(InvalidRequest):
            authenticate(request, sender=View)
        with pytest.raises(InvalidRequest):
            RequestAuthenticator().authenticate(request)
    finally:
        signals.token_rejected.disconnect(receiver)
    assert seen == [
        (View, request, Reason.MULTIPLE_CREDENTIALS.value),
        (RequestAuthenticator, request, Reason.MULTIPLE_CREDENTIALS.value),
    ]


def test_the_async_path_gives_the_same_answers(issuer):
    token = issuer.make_token(COMPANY)
    authenticator = RequestAuthenticator()

    async def run():
        ok = await authenticator.aauthenticate(with_header(f"Bearer {token}"))
        none = await authenticator.aauthenticate(with_header(None))
        with pytest.raises(InvalidToken):
            await authenticator.aauthenticate(with_header("Bearer x.y.z"))
        return ok, none

    ok, none = asyncio.run(run())
    assert ok is not None and ok.principal.company_id == COMPANY
    assert none is None


def test_a_credential_never_shows_its_token():
    credential = Credential(BEARER, "secret-token-value")
    assert "secret-token-value" not in repr(credential)
    assert "secret-token-value" not in str(credential)


def test_the_scheme_is_read_in_one_place_and_dispatched_on(issuer):
    """A subclass adding a scheme sees it parsed by read_authorization and handed to verify."""
    seen = []

    class Custom(RequestAuthenticator):
        schemes = (*RequestAuthenticator.schemes, "custom")

        def verify(self, request, credential):
            seen.append(credential.scheme)
            return super().verify(request, credential)

    token = issuer.make_token(COMPANY)
    Custom().authenticate(with_header(f"CUSTOM {token}"))
    Custom().authenticate(with_header(f"bearer {token}"))
    assert seen == ["custom", "bearer"]


def test_a_valid_token_followed_by_a_second_credential_is_refused(issuer):
    """The comma and space checks run when verification fails: a valid token never passes with a suffix."""
    token = issuer.make_token(COMPANY)
    assert authenticate(with_header(f"Bearer {token}")) is not None  # now in the validated-token cache
    for header, reason in [
        (f"Bearer {token}, Basic dXNlcjpwYXNz", Reason.MULTIPLE_CREDENTIALS),
        (f"Bearer {token},{token}", Reason.MULTIPLE_CREDENTIALS),
        (f"Bearer {token} x", Reason.MALFORMED_HEADER),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            authenticate(with_header(header))
        assert caught.value.reason is reason, header


def test_the_schemes_follow_the_dpop_mode_on_one_authenticator(issuer, settings):
    authenticator = RequestAuthenticator()
    assert authenticator.get_schemes() == (BEARER,)
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed"}
    assert authenticator.get_schemes() == (BEARER, "dpop")
    assert authenticator.get_schemes() is authenticator.get_schemes()  # one tuple per settings
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "disabled"}
    assert authenticator.get_schemes() == (BEARER,)


def test_a_credential_compares_by_value_with_credentials_only():
    credential = Credential(BEARER, "abc")
    assert credential == Credential(BEARER, "abc") and hash(credential) == hash(Credential(BEARER, "abc"))
    assert credential != Credential(BEARER, "abd") and credential != Credential("dpop", "abc")
    assert credential != (BEARER, "abc")
    assert (credential.scheme, credential.token) == (BEARER, "abc")
    with pytest.raises(AttributeError):
        credential.token = "other"  # type: ignore[misc]


@pytest.fixture
def recorded():
    """The keyword arguments of every token_rejected and token_accepted signal sent during the test."""
    seen: list[tuple[str, dict]] = []

    def rejected(sender, **kwargs):
        seen.append(("rejected", {"sender": sender, **kwargs}))

    def accepted(sender, **kwargs):
        seen.append(("accepted", {"sender": sender, **kwargs}))

    signals.token_rejected.connect(rejected)
    signals.token_accepted.connect(accepted)
    yield seen
    signals.token_rejected.disconnect(rejected)
    signals.token_accepted.disconnect(accepted)


class View:
    pass


def _record(recorded):
    (kind, kwargs), *others = recorded
    assert not others
    recorded.clear()
    return kind, kwargs["sender"], kwargs["request"], kwargs.get("reason"), kwargs.get("client_id")


def test_every_outcome_is_recorded_with_the_sender_the_request_and_the_client(issuer, settings, recorded):
    """Accepted, refused by the token's rules, and refused after them (a bound token sent as Bearer)."""
    authenticator = RequestAuthenticator(realm="partners", sender=View)
    request = with_header(f"Bearer {issuer.make_token(COMPANY, client_id='good-client')}")
    validated = authenticator.authenticate(request)
    assert validated is not None and recorded[0][1]["token"] is validated
    assert _record(recorded) == ("accepted", View, request, None, None)
    request = with_header(f"Bearer {issuer.make_token(COMPANY, client_id='late-client', exp=1, iat=0)}")
    with pytest.raises(InvalidToken):
        authenticator.authenticate(request)
    assert _record(recorded) == ("rejected", View, request, Reason.EXPIRED.value, "late-client")
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed"}
    token = issuer.make_token(COMPANY, client_id="bound-client", cnf={"jkt": "A" * 43})
    request = with_header(f"Bearer {token}")
    with pytest.raises(InvalidToken) as caught:
        authenticator.authenticate(request)
    assert caught.value.reason is Reason.BOUND_TOKEN_AS_BEARER
    assert _record(recorded) == ("rejected", View, request, Reason.BOUND_TOKEN_AS_BEARER.value, "bound-client")


def test_dpop_refusals_are_recorded_and_answered_on_the_realm(issuer, settings, recorded):
    """A bad proof, a missing nonce and the replay store down: each names the client and the realm."""
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed"}
    caches["default"].clear()
    authenticator = RequestAuthenticator(realm="partners", sender=View)
    key = DPoPKey()
    token = key.bind(issuer, COMPANY, client_id="dpop-client")
    url = "http://testserver/orders"

    wrong_ath = key.proof("GET", url, token + "x")
    request = factory.get("/orders", headers={"Authorization": f"DPoP {token}", "DPoP": wrong_ath})
    with pytest.raises(InvalidDPoPProof) as proof:
        authenticator.authenticate(request)
    assert proof.value.reason is Reason.DPOP_ATH_MISMATCH
    assert proof.value.auth_header == dpop.www_authenticate(
        "partners", dpop.DPOP, dpop.INVALID_DPOP_PROOF, dpop.INVALID_DPOP_PROOF_DESCRIPTION
    )
    assert 'realm="partners"' in proof.value.auth_header and 'error="invalid_dpop_proof"' in proof.value.auth_header
    assert _record(recorded) == ("rejected", View, request, Reason.DPOP_ATH_MISMATCH.value, "dpop-client")

    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_NONCE_LIFETIME": 60}
    request = factory.get("/orders", headers=key.headers("GET", url, token))
    with pytest.raises(UseDPoPNonce) as nonce:
        authenticator.authenticate(request)
    assert nonce.value.reason is Reason.DPOP_NONCE_REQUIRED
    assert nonce.value.nonce
    assert nonce.value.auth_header == dpop.www_authenticate(
        "partners", dpop.DPOP, dpop.USE_DPOP_NONCE, dpop.USE_DPOP_NONCE_DESCRIPTION
    )
    assert 'realm="partners"' in nonce.value.auth_header and 'error="use_dpop_nonce"' in nonce.value.auth_header
    response = HttpResponse()
    dpop.add_nonce_header(request, response)  # the nonce is remembered on the request for its answer
    assert response["DPoP-Nonce"] == nonce.value.nonce
    assert _record(recorded) == ("rejected", View, request, Reason.DPOP_NONCE_REQUIRED.value, "dpop-client")

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    settings.COBEE_DJANGO = {
        **settings.COBEE_DJANGO,
        "DPOP_NONCE_LIFETIME": None,
        "DPOP_REPLAY_CACHE_ALIAS": "down",
        "UNAVAILABLE_RETRY_AFTER": 17,
    }
    request = factory.get("/orders", headers=key.headers("GET", url, token))
    with pytest.raises(AuthenticationUnavailable) as down:
        authenticator.authenticate(request)
    assert down.value.reason is Reason.DPOP_REPLAY_STORE_UNAVAILABLE and down.value.wait == 17
    expected = ("rejected", View, request, Reason.DPOP_REPLAY_STORE_UNAVAILABLE.value, "dpop-client")
    assert _record(recorded) == expected


DPOP_CHALLENGE = 'DPoP realm="api", algs="ES256 PS256 RS256"'


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("DPoP ", Reason.MALFORMED_HEADER),
        ("DPoP\tabc", Reason.MALFORMED_HEADER),
        ("DPoP é.x.y", Reason.MALFORMED_HEADER),
        ("Basic dXNlcjpwYXNz, DPoP a.b.c", Reason.MULTIPLE_CREDENTIALS),
        ("DPoP a.b.c,d.e.f", Reason.MULTIPLE_CREDENTIALS),
    ],
)
def test_a_malformed_dpop_header_names_the_error_on_the_dpop_challenge(issuer, settings, header, reason):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed"}
    with pytest.raises(InvalidRequest) as caught:
        authenticate(with_header(header))
    assert caught.value.reason is reason
    assert caught.value.auth_header == (
        f'Bearer realm="api", {DPOP_CHALLENGE}, error="invalid_request",'
        f' error_description="{INVALID_REQUEST_DESCRIPTION}"'
    )


def test_a_bad_token_sent_as_dpop_names_the_error_on_the_dpop_challenge(issuer, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed"}
    expired = DPoPKey().bind(issuer, COMPANY, exp=1, iat=0)
    with pytest.raises(InvalidToken) as caught:
        authenticate(with_header(f"DPoP {expired}"))
    assert caught.value.reason is Reason.EXPIRED
    assert caught.value.auth_header == (
        f'Bearer realm="api", {DPOP_CHALLENGE}, error="invalid_token", error_description="{INVALID_TOKEN_DESCRIPTION}"'
    )


def test_the_bare_challenge_names_the_authenticators_realm(issuer):
    assert RequestAuthenticator(realm="partners").challenge() == 'Bearer realm="partners"'
    assert RequestAuthenticator().challenge() == 'Bearer realm="api"'


def test_only_spaces_separate_the_scheme_from_the_token(issuer):
    token = issuer.make_token(COMPANY)
    with pytest.raises(InvalidRequest) as tab:
        authenticate(with_header(f"Bearer \t{token}"))
    assert tab.value.reason is Reason.MALFORMED_HEADER
    with pytest.raises(InvalidToken):
        authenticate(with_header(f"Bearer X{token}"))
