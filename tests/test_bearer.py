"""cobee_django.bearer: the RFC 6750 challenge and the insufficient_scope answer of a 403."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from cobee_django import bearer

# Every character RFC 6749 section 3.3 allows in a scope token: %x21 / %x23-5B / %x5D-7E.
ALL_SCOPE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')


@pytest.fixture
def realm(settings):
    settings.COBEE_DJANGO = {"ISSUER": "https://tenant.example/", "AUDIENCE": "https://api.example", "REALM": "shop"}
    return "shop"


def test_challenge_parts(realm):
    assert bearer.challenge() == 'Bearer realm="shop"'
    assert bearer.challenge("other", bearer.INVALID_TOKEN, "desc") == (
        'Bearer realm="other", error="invalid_token", error_description="desc"'
    )
    assert bearer.challenge(None, bearer.INSUFFICIENT_SCOPE, None, ["read:a", "write:b"]) == (
        'Bearer realm="shop", error="insufficient_scope", scope="read:a write:b"'
    )


def test_scope_tokens_that_cannot_be_quoted_are_dropped(realm):
    # A quote or a backslash would break out of the quoted string; an empty token is no token.
    assert bearer.challenge(scope=['a"b', "c\\d", "", "ok"]) == 'Bearer realm="shop", scope="ok"'
    assert bearer.challenge(scope=['a"b']) == 'Bearer realm="shop"'
    assert bearer.challenge(scope=[ALL_SCOPE_CHARS]) == f'Bearer realm="shop", scope="{ALL_SCOPE_CHARS}"'


def test_a_403_for_missing_scopes_gets_the_challenge(realm):
    request = RequestFactory().get("/")
    bearer.remember_insufficient_scope(request, ["write:b", "read:a"])
    response = HttpResponse(status=403)
    bearer.add_insufficient_scope_challenge(request, response)
    assert response["WWW-Authenticate"] == (
        'Bearer realm="shop", error="insufficient_scope", '
        f'error_description="{bearer.INSUFFICIENT_SCOPE_DESCRIPTION}", scope="read:a write:b"'
    )


def test_an_existing_challenge_is_kept(realm):
    request = RequestFactory().get("/")
    bearer.remember_insufficient_scope(request, ["read:a"])
    response = HttpResponse(status=403)
    response["WWW-Authenticate"] = 'Bearer realm="shop", error="invalid_token"'
    bearer.add_insufficient_scope_challenge(request, response)
    assert response["WWW-Authenticate"] == 'Bearer realm="shop", error="invalid_token"'


@pytest.mark.parametrize("status", [200, 401, 404])
def test_only_a_403_gets_it(realm, status):
    request = RequestFactory().get("/")
    bearer.remember_insufficient_scope(request, ["read:a"])
    response = HttpResponse(status=status)
    bearer.add_insufficient_scope_challenge(request, response)
    assert not response.has_header("WWW-Authenticate")


def test_a_403_for_another_reason_gets_no_challenge(realm):
    response = HttpResponse(status=403)
    bearer.add_insufficient_scope_challenge(RequestFactory().get("/"), response)
    assert not response.has_header("WWW-Authenticate")
