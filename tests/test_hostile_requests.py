"""Hostile requests against the token-authenticated DRF surface: odd ``Authorization`` headers, tokens
in the URL or body, malformed company and corporation ids, unusual methods. Each is a constant 4xx
(never a 500) with the RFC 6750 challenge its status calls for, and no tenant stays bound afterwards,
sync and async."""

from __future__ import annotations

import asyncio

import django
import pytest
from django.test import RequestFactory

from cobee_django import state
from cobee_django.credentials import authenticate
from cobee_django.exceptions import InvalidRequest, Reason
from tests import test_api
from tests.testapp.auth import header

pytestmark = pytest.mark.urls("tests.testapp.urls")

READ = ["read:departments"]
world = test_api.world  # a fixture: the test project's companies
CHALLENGE = 'Bearer realm="api"'


def assert_clean(response, allowed=(400, 401, 403, 404, 405)):
    assert response.status_code in allowed, (response.status_code, response.content[:200])
    assert state.tenant_or_none() is None
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith(CHALLENGE)
    if response.status_code == 400 and response.has_header("WWW-Authenticate"):
        assert 'error="invalid_request"' in response["WWW-Authenticate"]


@pytest.fixture
def token(cobee_issuer, tenants):
    return cobee_issuer.make_token(tenants.a, scopes=READ)


HEADERS = [
    "",
    " ",
    "Bearer",
    "Bearer ",
    "Bearer  ",
    "bearer",
    "BEARER x",
    "Bearer\tx.y.z",
    "Bearer x.y.z ",
    "Bearer x.y.z\t",
    " Bearer x.y.z",
    "Bearer x.y.z, Bearer x.y.z",
    "Bearer x.y.z,Bearer x.y.z",
    "Basic x, Bearer x.y.z",
    "Bearer é.ü.ß",
    "Bearer \u200bx.y.z",
    "Bearer " + "a" * 100_000,
    "Bearer " + ".".join(["a" * 3000] * 3),
    "Bearer ....",
    "Bearer a.b.c.d.e",
    "Bearer =",
    "Bearer \x00",
    "Bearer\x00x.y.z",
    "DPoP x.y.z",
    "Negotiate",
]


@pytest.mark.parametrize("value", HEADERS, ids=range(len(HEADERS)))
@pytest.mark.parametrize("path", ["/token/departments", "/token/companies/{a}/departments"])
def test_odd_authorization_headers_are_a_constant_4xx(client, tenants, value, path):
    response = client.get(path.format(a=tenants.a), HTTP_AUTHORIZATION=value)
    assert_clean(response)


@pytest.mark.parametrize("value", HEADERS, ids=range(len(HEADERS)))
def test_odd_authorization_headers_under_asgi(async_client, tenants, value):
    async def go():
        # A server hands over the header's bytes as latin-1, as WSGI does.
        wire = value.encode("utf-8").decode("latin-1")
        return await async_client.get("/token/departments", AUTHORIZATION=wire)

    assert_clean(asyncio.run(go()))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Bearer\t{t}", Reason.MALFORMED_HEADER),
        ("bearer\t\t{t}", Reason.MALFORMED_HEADER),
        ("Basic dXNlcjpwYXNz, Bearer {t}", Reason.MULTIPLE_CREDENTIALS),
        ("Token abc,bearer {t}", Reason.MULTIPLE_CREDENTIALS),
        ("Basic dXNlcjpwYXNz,\tBearer\t{t}", Reason.MULTIPLE_CREDENTIALS),
    ],
)
def test_a_bearer_credential_hidden_behind_a_tab_or_another_scheme_is_refused(cobee_issuer, tenants, value, reason):
    token = cobee_issuer.make_token(tenants.a, scopes=READ)
    with pytest.raises(InvalidRequest) as caught:
        authenticate(RequestFactory().get("/", HTTP_AUTHORIZATION=value.format(t=token)))
    assert caught.value.reason is reason
    assert 'error="invalid_request"' in caught.value.auth_header


@pytest.mark.parametrize("value", ['Digest username="a", realm="b", nonce="c"', "Basic dXNlcjpwYXNz", "Token a, b"])
def test_other_schemes_stay_someone_elses(value):
    assert authenticate(RequestFactory().get("/", HTTP_AUTHORIZATION=value)) is None


@pytest.mark.parametrize(
    "query",
    ["access_token={t}", "access%5Ftoken={t}", "%61ccess_token={t}", "x=1&access_token=", "access_token"],
)
def test_a_token_in_the_query_string_is_refused_however_encoded(client, tenants, token, query):
    response = client.get("/token/departments?" + query.format(t=token))
    assert_clean(response, allowed=(400,))
    response = client.get("/token/departments?" + query.format(t=token), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_clean(response, allowed=(400,))


@pytest.mark.parametrize("escape", ["", "%20"])
@pytest.mark.skipif(
    django.VERSION < (5, 0),
    reason="Django 4.2's error report reads request.GET again while reporting TooManyFieldsSent, and raises",
)
def test_a_query_string_with_too_many_fields_is_a_4xx_or_served(client, tenants, token, escape):
    query = "&".join(f"f{i}=1{escape}" for i in range(1500))
    response = client.get(f"/token/companies/{tenants.a}/departments?{query}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_clean(response, allowed=(200, 400))


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-Urlencoded",
    ],
)
def test_a_token_in_a_form_body_is_refused(client, tenants, token, content_type):
    response = client.post("/token/departments", f"access_token={token}&name=x", content_type=content_type)
    assert_clean(response, allowed=(400,))
    response = client.post(
        "/token/departments",
        f"access_token={token}&name=x",
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert_clean(response, allowed=(400,))


COMPANY_IDS = [
    "not-a-uuid",
    "{a_upper}",
    "{{{a}}}",
    "{a_hex}",
    "urn:uuid:{a}",
    "{a}0",
    "x" * 5000,
    "%00",
    "%E2%80%8B",
    "00000000-0000-0000-0000-000000000000",
    " {a}",
]


@pytest.mark.parametrize("raw", COMPANY_IDS)
def test_malformed_company_ids_in_the_path_are_a_4xx(client, tenants, token, raw):
    value = raw.format(a=tenants.a, a_upper=str(tenants.a).upper(), a_hex=tenants.a.hex)
    response = client.get(f"/token/companies/{value}/departments", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_clean(response, allowed=(403, 404))


@pytest.mark.parametrize("raw", ["nope", "{c_upper}", "{c_hex}", "y" * 5000])
def test_malformed_corporation_ids_in_the_path_are_a_4xx(client, tenants, raw):
    value = raw.format(c_upper=str(tenants.corp).upper(), c_hex=tenants.corp.hex)
    response = client.get(f"/corporations/{value}", **header(tenants.a, tenants.corp, READ))
    assert_clean(response, allowed=(403, 404))


@pytest.mark.parametrize("method", ["head", "options", "put", "patch", "delete", "trace"])
def test_unusual_methods_are_a_4xx_or_allowed_and_leave_no_tenant(client, tenants, token, method):
    path = f"/token/companies/{tenants.a}/departments"
    response = getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_clean(response, allowed=(200, 405))
    response = getattr(client, method)(path, HTTP_AUTHORIZATION="Bearer x.y.z")
    assert_clean(response, allowed=(401,) if method != "options" else (200, 401))


# --- every way of serving: plain views sync/async, class-based views, adrf, Ninja ---------------------


@pytest.mark.urls("testproject.urls")
@pytest.mark.parametrize("surface", ["drf", "plain", "plain-async", "cbv", "cbv-async", "adrf", "ninja", "ninja-async"])
def test_every_surface_answers_odd_headers_and_hidden_tokens_with_a_4xx(world, cobee_issuer, surface):
    from rest_framework.test import APIClient

    from tests.test_serving_surfaces import employees_url

    url = employees_url(surface, world.a)
    token = cobee_issuer.make_token(world.a.id, scopes=["read:employees"])
    for value in [*HEADERS, f"Bearer\t{token}", f"Basic dXNlcjpwYXNz, Bearer {token}"]:
        response = APIClient().get(url, HTTP_AUTHORIZATION=value)
        assert_clean(response, allowed=(400, 401))
    for query in (f"access_token={token}", f"access%5Ftoken={token}"):
        response = APIClient().get(f"{url}?{query}", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_clean(response, allowed=(400,))
    for bad in ("x" * 5000, str(world.a.id).upper(), f"{{{world.a.id}}}"):
        response = APIClient().get(employees_url(surface, bad), HTTP_AUTHORIZATION=f"Bearer {token}")
        assert_clean(response, allowed=(403, 404))
