"""DPoP requests end to end through DRF and the framework-neutral authenticator: the modes, every bad
proof answered 401 with the RFC 9449 challenge (never a 500, never a tenant bound), server nonces,
the replay store's outage, and htu behind a proxy (Django's own settings only)."""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import caches
from django.test import RequestFactory
from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django import signals
from cobee_django.authentication import JWTAuthentication
from cobee_django.credentials import RequestAuthenticator, error_response
from cobee_django.dpop import access_token_hash
from cobee_django.exceptions import InvalidDPoPProof, Reason, UseDPoPNonce
from cobee_django.jose import b64url_encode
from cobee_django.testing import MISSING, DPoPKey

COMPANY = uuid.UUID("6f1b3a52-3f5e-4c1e-9d8e-0f6b3c1d2e4f")
URL = "http://testserver/orders"
ALGS = 'algs="ES256 PS256 RS256"'
BEARER = 'Bearer realm="api"'
DPOP = f'DPoP realm="api", {ALGS}'
INVALID_PROOF = 'error="invalid_dpop_proof", error_description="The DPoP proof is invalid."'
INVALID_TOKEN = 'error="invalid_token", error_description="The access token is invalid or has expired."'


class Orders(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"company": str(request.user.company_id)})

    post = get


urlpatterns = [path("orders", Orders.as_view())]
pytestmark = pytest.mark.urls(__name__)


@pytest.fixture
def mode(settings):
    def set_mode(value: str, **more):
        settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": value, **more}

    set_mode("allowed")
    caches["default"].clear()
    return set_mode


@pytest.fixture
def key():
    return DPoPKey()


@pytest.fixture
def events():
    """Every token_rejected and tenant_bound signal sent during the test."""
    seen: list[tuple[str, object]] = []

    def rejected(sender, reason, **kwargs):
        seen.append(("rejected", Reason(reason)))

    def bound(sender, **kwargs):
        seen.append(("bound", kwargs.get("tenant")))

    signals.token_rejected.connect(rejected)
    signals.tenant_bound.connect(bound)
    yield seen
    signals.token_rejected.disconnect(rejected)
    signals.tenant_bound.disconnect(bound)


def test_a_dpop_request_with_a_bound_token_is_accepted(client, cobee_issuer, mode, key):
    token = key.bind(cobee_issuer, COMPANY)
    response = client.get("/orders", headers=key.headers("GET", URL, token))
    assert response.status_code == 200, response.headers.get("WWW-Authenticate")
    assert response.json() == {"company": str(COMPANY)}


def test_each_algorithm_configured_is_accepted(client, cobee_issuer, mode):
    mode("allowed", DPOP_ALGORITHMS=["ES256", "ES384", "EdDSA", "PS256", "RS256"])
    for alg in ("ES256", "ES384", "EdDSA", "PS256", "RS256"):
        key = DPoPKey(alg)
        token = key.bind(cobee_issuer, COMPANY)
        assert client.post("/orders", headers=key.headers("POST", URL, token)).status_code == 200, alg


def test_without_credentials_both_challenges_are_sent(client, cobee_issuer, mode):
    response = client.get("/orders")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f"{BEARER}, {DPOP}"


def test_disabled_mode_keeps_the_bearer_challenge_alone_and_ignores_the_scheme(client, cobee_issuer, mode, key):
    mode("disabled")
    token = key.bind(cobee_issuer, COMPANY)
    response = client.get("/orders", headers=key.headers("GET", URL, token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == BEARER


def test_required_mode_sends_the_dpop_challenge_alone(client, cobee_issuer, mode):
    mode("required")
    assert client.get("/orders")["WWW-Authenticate"] == DPOP


def test_an_unbound_bearer_token_is_still_accepted_when_allowed(client, cobee_issuer, mode):
    response = client.get("/orders", headers={"Authorization": cobee_issuer.bearer(COMPANY)})
    assert response.status_code == 200


@pytest.mark.parametrize("dpop_mode", ["disabled", "allowed", "required"])
def test_a_bound_token_is_never_accepted_as_bearer(client, cobee_issuer, mode, key, events, dpop_mode):
    mode(dpop_mode)
    token = key.bind(cobee_issuer, COMPANY)
    response = client.get("/orders", headers={"Authorization": f"Bearer {token}", "DPoP": key.proof("GET", URL, token)})
    assert response.status_code == 401
    assert events == [("rejected", Reason.BOUND_TOKEN_AS_BEARER)]
    if dpop_mode == "allowed":
        assert response["WWW-Authenticate"] == f"{BEARER}, {INVALID_TOKEN}, {DPOP}"


def test_required_mode_refuses_bearer_tokens(client, cobee_issuer, mode, events):
    mode("required")
    response = client.get("/orders", headers={"Authorization": cobee_issuer.bearer(COMPANY)})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f"{DPOP}, {INVALID_TOKEN}"
    assert events == [("rejected", Reason.DPOP_REQUIRED)]


def test_required_clients_must_use_dpop_when_others_need_not(client, cobee_issuer, mode, key, events):
    mode("allowed", DPOP_REQUIRED_CLIENTS=["strict-client"])
    ok = client.get("/orders", headers={"Authorization": cobee_issuer.bearer(COMPANY, client_id="relaxed")})
    assert ok.status_code == 200
    refused = client.get("/orders", headers={"Authorization": cobee_issuer.bearer(COMPANY, client_id="strict-client")})
    assert refused.status_code == 401
    assert events == [("rejected", Reason.DPOP_REQUIRED)]
    token = key.bind(cobee_issuer, COMPANY, client_id="strict-client")
    assert client.get("/orders", headers=key.headers("GET", URL, token)).status_code == 200


def test_an_unbound_token_with_the_dpop_scheme_is_an_invalid_token(client, cobee_issuer, mode, key, events):
    token = cobee_issuer.make_token(COMPANY)
    response = client.get("/orders", headers=key.headers("GET", URL, token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f"{BEARER}, {DPOP}, {INVALID_TOKEN}"
    assert events == [("rejected", Reason.TOKEN_NOT_DPOP_BOUND)]


def _private_jwk(key):
    jwk = dict(key.public_jwk)
    jwk["d"] = b64url_encode(key.key.private_numbers().private_value.to_bytes(32, "big"))
    return jwk


def _hmac_proof(token):
    import hashlib
    import hmac
    import json

    header = b64url_encode(json.dumps({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2s"}}).encode())
    claims = {"jti": "h", "htm": "GET", "htu": URL, "iat": int(time.time()), "ath": access_token_hash(token)}
    signing_input = f"{header}.{b64url_encode(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url_encode(hmac.new(b'sk', signing_input.encode(), hashlib.sha256).digest())}"


BAD_PROOFS = {
    "missing": (Reason.DPOP_MISSING_PROOF, lambda key, token: None),
    "empty": (Reason.DPOP_MISSING_PROOF, lambda key, token: ""),
    "two proofs": (
        Reason.DPOP_MULTIPLE_PROOFS,
        lambda key, token: key.proof("GET", URL, token) + "," + key.proof("GET", URL, token),
    ),
    "malformed": (Reason.DPOP_MALFORMED_PROOF, lambda key, token: "not-a-jwt"),
    "garbage segments": (Reason.DPOP_MALFORMED_PROOF, lambda key, token: "e30.!!.AA"),
    "private key in header": (
        Reason.DPOP_PRIVATE_KEY,
        lambda key, token: key.proof("GET", URL, token, headers={"jwk": _private_jwk(key)}),
    ),
    "alg none": (Reason.DPOP_ALG_NOT_ALLOWED, lambda key, token: key.proof("GET", URL, token, headers={"alg": "none"})),
    "hmac": (Reason.DPOP_ALG_NOT_ALLOWED, lambda key, token: _hmac_proof(token)),
    "typ jwt": (Reason.DPOP_BAD_TYP, lambda key, token: key.proof("GET", URL, token, headers={"typ": "JWT"})),
    "stale iat": (Reason.DPOP_IAT_TOO_OLD, lambda key, token: key.proof("GET", URL, token, iat=time.time() - 3600)),
    "future iat": (Reason.DPOP_IAT_IN_FUTURE, lambda key, token: key.proof("GET", URL, token, iat=time.time() + 3600)),
    "wrong htu": (Reason.DPOP_HTU_MISMATCH, lambda key, token: key.proof("GET", "http://testserver/other", token)),
    "wrong host": (Reason.DPOP_HTU_MISMATCH, lambda key, token: key.proof("GET", "http://evil/orders", token)),
    "wrong htm": (Reason.DPOP_HTM_MISMATCH, lambda key, token: key.proof("POST", URL, token)),
    "missing ath": (Reason.DPOP_ATH_MISMATCH, lambda key, token: key.proof("GET", URL)),
    "wrong ath": (Reason.DPOP_ATH_MISMATCH, lambda key, token: key.proof("GET", URL, token + "x")),
    "another key": (Reason.DPOP_KEY_MISMATCH, lambda key, token: DPoPKey().proof("GET", URL, token)),
    "missing jti": (Reason.DPOP_BAD_CLAIM, lambda key, token: key.proof("GET", URL, token, jti=MISSING)),
}


@pytest.mark.parametrize("case", list(BAD_PROOFS))
def test_every_bad_proof_is_a_401_invalid_dpop_proof_and_binds_no_tenant(client, cobee_issuer, mode, key, events, case):
    reason, make = BAD_PROOFS[case]
    token = key.bind(cobee_issuer, COMPANY)
    proof = make(key, token)
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    response = client.get("/orders", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f"{BEARER}, {DPOP}, {INVALID_PROOF}"
    assert response.json()["detail"] == "The DPoP proof is invalid."
    assert events == [("rejected", reason)]  # and no ("bound", ...)


def test_a_replayed_proof_is_refused(client, cobee_issuer, mode, key, events):
    token = key.bind(cobee_issuer, COMPANY)
    headers = key.headers("GET", URL, token)
    assert client.get("/orders", headers=headers).status_code == 200
    replay = client.get("/orders", headers=headers)
    assert replay.status_code == 401
    assert replay["WWW-Authenticate"] == f"{BEARER}, {DPOP}, {INVALID_PROOF}"
    assert events == [("rejected", Reason.DPOP_REPLAY)]


def test_a_server_nonce_is_asked_for_and_a_correct_client_retries(client, cobee_issuer, mode, key, events):
    mode("allowed", DPOP_NONCE_LIFETIME=60)
    token = key.bind(cobee_issuer, COMPANY)
    first = client.get("/orders", headers=key.headers("GET", URL, token))
    assert first.status_code == 401
    assert first["WWW-Authenticate"] == (
        f'{BEARER}, {DPOP}, error="use_dpop_nonce", error_description="Send the DPoP-Nonce value in the proof."'
    )
    nonce = first["DPoP-Nonce"]
    assert nonce
    retry = client.get("/orders", headers=key.headers("GET", URL, token, nonce=nonce))
    assert retry.status_code == 200
    assert events == [("rejected", Reason.DPOP_NONCE_REQUIRED)]


def test_the_replay_store_down_is_a_503_unless_it_fails_open(client, cobee_issuer, settings, key):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed", "DPOP_REPLAY_CACHE_ALIAS": "down"}
    token = key.bind(cobee_issuer, COMPANY)
    closed = client.get("/orders", headers=key.headers("GET", URL, token))
    assert closed.status_code == 503
    assert closed["Retry-After"] == "30"
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_REPLAY_FAIL_OPEN": True}
    assert client.get("/orders", headers=key.headers("GET", URL, token)).status_code == 200


def test_behind_a_proxy_htu_follows_djangos_proxy_settings_only(client, cobee_issuer, mode, key, settings, events):
    token = key.bind(cobee_issuer, COMPANY)
    public = "https://api.example.com/orders"
    forwarded = {"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "https"}
    settings.ALLOWED_HOSTS = ["testserver", "api.example.com"]
    # Django is not told about the proxy: the forwarded headers are not guessed from.
    refused = client.get("/orders", headers={**key.headers("GET", public, token), **forwarded})
    assert refused.status_code == 401
    assert events == [("rejected", Reason.DPOP_HTU_MISMATCH)]
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    accepted = client.get("/orders", headers={**key.headers("GET", public, token), **forwarded})
    assert accepted.status_code == 200


def test_a_host_django_refuses_matches_no_proof(cobee_issuer, mode, key, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.USE_X_FORWARDED_HOST = True
    token = key.bind(cobee_issuer, COMPANY)
    headers = {**key.headers("GET", "http://evil.example/orders", token), "X-Forwarded-Host": "evil.example"}
    # Without CommonMiddleware (which answers 400 first), the authenticator itself refuses the proof.
    with pytest.raises(InvalidDPoPProof) as caught:
        RequestAuthenticator().authenticate(RequestFactory().get("/orders", headers=headers))
    assert caught.value.reason is Reason.DPOP_HTU_MISMATCH


def test_the_plain_authenticator_answers_the_nonce_in_its_response(cobee_issuer, mode, key):
    mode("allowed", DPOP_NONCE_LIFETIME=60)
    token = key.bind(cobee_issuer, COMPANY)
    request = RequestFactory().get("/orders", headers=key.headers("GET", URL, token))
    with pytest.raises(UseDPoPNonce) as caught:
        RequestAuthenticator().authenticate(request)
    response = error_response(caught.value)
    assert response.status_code == 401
    assert response["DPoP-Nonce"] == caught.value.nonce
    request = RequestFactory().get("/orders", headers=key.headers("GET", URL, token, nonce=caught.value.nonce))
    assert RequestAuthenticator().authenticate(request).principal.company_id == COMPANY
