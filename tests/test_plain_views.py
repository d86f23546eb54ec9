"""cobee_django.views.token_required and TokenRequiredMixin: the tenant bound for the whole view and
unbound afterwards, exceptions included, sync and async.

The request matrices (cross-tenant, tokens, scopes, paths) run in tests/test_serving_surfaces.py.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory
from django.views import View

from cobee_django import state
from cobee_django.views import TokenRequiredMixin, token_required

factory = RequestFactory()
SEEN: list[object] = []


class Boom(Exception):
    pass


@token_required
def sync_view(request, companyId):
    SEEN.append(state.tenant_or_none())
    if request.GET.get("fail"):
        raise Boom
    return HttpResponse("ok")


@token_required(realm="partners", scopes=["read:things"])
async def async_view(request, companyId):
    await asyncio.sleep(0)
    SEEN.append(state.tenant_or_none())
    if request.GET.get("fail"):
        raise Boom
    return JsonResponse({"user": request.user.client_id})


class Things(TokenRequiredMixin, View):
    required_read_scopes = ["read:things"]

    def get(self, request, companyId):
        SEEN.append(state.tenant_or_none())
        raise Boom


class AsyncThings(TokenRequiredMixin, View):
    async def get(self, request, companyId):
        SEEN.append(state.tenant_or_none())
        return HttpResponse("ok")


@pytest.fixture(autouse=True)
def _clear():
    SEEN.clear()
    yield
    assert state.tenant_or_none() is None and not state.is_unscoped()


def request(tenants, cobee_token, path="", scopes=("read:things",), **extra):
    token = cobee_token(company=tenants.a, scopes=scopes)
    return factory.get(f"/companies/{tenants.a}/things{path}", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def test_the_tenant_is_bound_for_the_view_and_unbound_after(tenants, cobee_token):
    response = sync_view(request(tenants, cobee_token), companyId=str(tenants.a))
    assert response.status_code == 200
    assert [t.company_ids for t in SEEN] == [frozenset({tenants.a})]
    assert response["Cache-Control"] == "private" and "Authorization" in response["Vary"]


def test_unbound_after_an_exception_sync(tenants, cobee_token):
    with pytest.raises(Boom):
        sync_view(request(tenants, cobee_token, "?fail=1"), companyId=str(tenants.a))
    assert SEEN[0] is not None
    with pytest.raises(Boom):
        Things.as_view()(request(tenants, cobee_token), companyId=str(tenants.a))
    assert len(SEEN) == 2 and SEEN[1] is not None


def test_async_views_bind_on_the_loop_and_unbind_after_an_exception(tenants, cobee_token):
    async def run():
        ok = await async_view(request(tenants, cobee_token), companyId=str(tenants.a))
        with pytest.raises(Boom):
            await async_view(request(tenants, cobee_token, "?fail=1"), companyId=str(tenants.a))
        after = state.tenant_or_none()
        cbv = await AsyncThings.as_view()(request(tenants, cobee_token), companyId=str(tenants.a))
        return ok, after, cbv

    ok, after, cbv = async_to_sync(run)()
    assert ok.status_code == 200 and cbv.status_code == 200
    assert after is None
    assert [t.company_ids for t in SEEN] == [frozenset({tenants.a})] * 3


def test_concurrent_async_requests_keep_their_own_tenants(tenants, cobee_token):
    """Tasks interleaved on one loop: each view sees its own token's tenant, never the other's."""
    seen: dict[str, object] = {}

    @token_required
    async def slow(request, companyId):
        await asyncio.sleep(0.01)
        seen.setdefault(companyId, set()).add(next(iter(state.tenant_or_none().company_ids)))
        await asyncio.sleep(0.01)
        return HttpResponse("ok")

    def make(company):
        token = cobee_token(company=company)
        return factory.get(f"/companies/{company}/x", HTTP_AUTHORIZATION=f"Bearer {token}")

    async def run():
        jobs = []
        for n in range(40):
            company = (tenants.a, tenants.c)[n % 2]
            jobs.append(slow(make(company), companyId=str(company)))
        return await asyncio.gather(*jobs)

    responses = async_to_sync(run)()
    assert {r.status_code for r in responses} == {200}
    assert seen == {str(tenants.a): {tenants.a}, str(tenants.c): {tenants.c}}


def test_refusals_name_the_realm_and_the_scopes(tenants, cobee_token):
    async def run():
        return await async_view(request(tenants, cobee_token, scopes=()), companyId=str(tenants.a))

    response = async_to_sync(run)()
    assert response.status_code == 403
    assert response["WWW-Authenticate"].startswith('Bearer realm="partners", error="insufficient_scope"')
    assert 'scope="read:things"' in response["WWW-Authenticate"]
    assert SEEN == []


def test_a_refused_request_never_runs_the_view(tenants):
    response = sync_view(factory.get(f"/companies/{tenants.a}/things"), companyId=str(tenants.a))
    assert response.status_code == 401
    assert SEEN == []


@pytest.mark.urls("testproject.urls")
@pytest.mark.parametrize("surface", ["plain", "plain-async", "cbv", "cbv-async", "ninja", "ninja-async"])
def test_a_post_with_a_token_needs_no_csrf_cookie(tenants, cobee_token, surface):
    """Bearer tokens are not cookies: Django's CSRF check must not refuse API clients."""
    from django.test import Client

    token = cobee_token(company=tenants.a, scopes=["write:employees"])
    response = Client(enforce_csrf_checks=True).post(
        f"/api/v3/{surface}/companies/{tenants.a}/employees",
        {"email": "csrf@a.example", "legalId": "1X", "name": "N", "surname": "S"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 201, response.content
