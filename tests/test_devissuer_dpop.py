"""The development issuer issues DPoP-bound tokens (RFC 9449 section 5) when the token request carries a
valid proof, and refuses the request when the proof is bad; the bound token then works with DPoP only."""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import caches
from django.test import RequestFactory

from cobee_django.credentials import RequestAuthenticator
from cobee_django.devissuer import keys
from cobee_django.devissuer.models import DevClient
from cobee_django.exceptions import InvalidToken, Reason
from cobee_django.jwks import pin_key_set, unpin_key_set
from cobee_django.testing import DPoPKey

from .test_devissuer import AUDIENCE, claims_of, form, post_form

COMPANY = uuid.UUID("3c1d2e4f-6f1b-4a52-9d8e-0f6b3f5e4c1e")
TOKEN_URL = "http://testserver/oauth/token"
API_URL = "http://testserver/orders"


@pytest.fixture(autouse=True)
def dev_issuer_settings(settings, tmp_path):
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "KEY_DIR": tmp_path, "ENABLED": True}
    settings.DEBUG = True
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": "allowed"}
    caches["default"].clear()


@pytest.fixture
def dev_client(db):
    return DevClient.objects.create_client(company_id=COMPANY, name="dpop")


def token_request(client, dev_client, **headers):
    model, secret = dev_client
    body = form(grant_type="client_credentials", client_id=model.client_id, client_secret=secret, audience=AUDIENCE)
    return post_form(client, "/oauth/token", body, headers=headers)


def test_a_token_request_with_a_proof_gets_a_token_bound_to_its_key(client, dev_client, settings):
    key = DPoPKey()
    response = token_request(client, dev_client, DPoP=key.proof("POST", TOKEN_URL))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": key.jkt}
    issuer = keys.get_issuer()
    pin_key_set(issuer.issuer, issuer.jwks())
    try:
        request = RequestFactory().get("/orders", headers=key.headers("GET", API_URL, token))
        assert RequestAuthenticator().authenticate(request).principal.company_id == COMPANY
        with pytest.raises(InvalidToken) as caught:
            RequestAuthenticator().authenticate(RequestFactory().get("/orders", HTTP_AUTHORIZATION=f"Bearer {token}"))
        assert caught.value.reason is Reason.BOUND_TOKEN_AS_BEARER
    finally:
        unpin_key_set(issuer.issuer)


def test_without_a_proof_the_token_is_a_bearer_token(client, dev_client):
    body = token_request(client, dev_client).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in claims_of(body["access_token"])


@pytest.mark.parametrize(
    "make",
    [
        lambda key: key.proof("GET", TOKEN_URL),
        lambda key: key.proof("POST", "http://testserver/other"),
        lambda key: key.proof("POST", TOKEN_URL, iat=time.time() - 3600),
        lambda key: key.proof("POST", TOKEN_URL, headers={"alg": "none"}),
        lambda key: key.proof("POST", TOKEN_URL) + "," + key.proof("POST", TOKEN_URL),
        lambda key: "garbage",
    ],
)
def test_a_bad_proof_gets_no_token(client, dev_client, make):
    response = token_request(client, dev_client, DPoP=make(DPoPKey()))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"
    assert "access_token" not in response.json()


def test_a_replayed_proof_gets_no_second_token(client, dev_client):
    proof = DPoPKey().proof("POST", TOKEN_URL)
    assert token_request(client, dev_client, DPoP=proof).status_code == 200
    replay = token_request(client, dev_client, DPoP=proof)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_dpop_proof"


def test_with_server_nonces_the_client_retries_with_the_nonce(client, dev_client, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_NONCE_LIFETIME": 60}
    key = DPoPKey()
    first = token_request(client, dev_client, DPoP=key.proof("POST", TOKEN_URL))
    assert first.status_code == 400
    assert first.json()["error"] == "use_dpop_nonce"
    retry = token_request(client, dev_client, DPoP=key.proof("POST", TOKEN_URL, nonce=first["DPoP-Nonce"]))
    assert retry.status_code == 200
    assert retry.json()["token_type"] == "DPoP"
