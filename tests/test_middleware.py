"""The middleware binds each request's tenant from the DRF-verified principal and always unbinds."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory

from cobee_django import state
from cobee_django.middleware import TenantMiddleware
from cobee_django.state import Tenant
from tests.testapp.auth import header, principal
from tests.testapp.models import Department

pytestmark = pytest.mark.urls("tests.testapp.urls")


@pytest.fixture
def depts(tenants):
    with state.unscoped():
        for key in ("a", "b", "c"):
            Department.objects.create(company_id=getattr(tenants, key), name=f"{key}-dept")
    return tenants


def async_header(company):
    return {"X-Test-Principal": header(company)["HTTP_X_TEST_PRINCIPAL"]}


def names(response):
    assert response.status_code == 200, response.content
    return [d["name"] for d in response.json()]


def test_an_api_request_sees_its_company(client, depts):
    assert names(client.get("/departments", **header(depts.a))) == ["a-dept"]
    assert names(client.get("/departments", **header(depts.c))) == ["c-dept"]
    assert state.tenant_or_none() is None


def test_a_corporation_token_sees_its_companies(client, depts):
    assert names(client.get("/departments", **header(depts.a, depts.corp))) == ["a-dept", "b-dept"]


def test_no_principal_no_tenant(client, depts):
    response = client.get("/departments")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_tenant_is_unbound_after_an_exception(client, depts):
    client.raise_request_exception = False
    response = client.get("/boom", **header(depts.a))
    assert response.status_code == 500
    assert state.tenant_or_none() is None and not state.is_unscoped()


def test_sync_middleware_unbinds_on_exceptions(depts):
    seen = []

    def view(request):
        request.user = principal(depts.a)
        seen.append(state.tenant_or_none())
        raise ValueError

    with pytest.raises(ValueError):
        TenantMiddleware(view)(RequestFactory().get("/"))
    assert seen[0].company_ids == {depts.a}
    assert state.tenant_or_none() is None


def test_the_tenant_follows_the_user_object_and_resolves_once_per_user(depts):
    calls = []

    class Counting(TenantMiddleware):
        def get_client_tenant(self, request, p):
            calls.append(p)
            return super().get_client_tenant(request, p)

    def view(request):
        assert state.tenant_or_none() is None  # nobody authenticated yet
        request.user = principal(depts.a)
        first = [state.tenant_or_none() for _ in range(3)]
        request.user = principal(depts.c)  # e.g. DRF authenticated another principal
        return HttpResponse(json.dumps([sorted(map(str, t.company_ids)) for t in [*first, state.tenant_or_none()]]))

    response = Counting(view)(RequestFactory().get("/"))
    assert json.loads(response.content) == [[str(depts.a)]] * 3 + [[str(depts.c)]]
    assert len(calls) == 2


def test_session_users_go_through_the_session_hook(depts):
    class Staff(TenantMiddleware):
        def get_session_tenant(self, request, user):
            return Tenant(frozenset({depts.b}), principal=user)

    class User:
        is_authenticated = True

    def view(request):
        request.user = User()
        return HttpResponse(",".join(Department.objects.values_list("name", flat=True)))

    assert Staff(view)(RequestFactory().get("/")).content == b"b-dept"
    with pytest.raises(Exception, match="No tenant is bound"):
        TenantMiddleware(view)(RequestFactory().get("/"))  # by default such users get nothing


@pytest.mark.django_db(transaction=True)
def test_async_middleware_binds_and_unbinds(depts):
    async def view(request):
        request.user = principal(depts.c)
        await asyncio.sleep(0)
        tenant = await sync_to_async(state.require_tenant)()  # resolving may touch the database
        await sync_to_async(lambda: connection.close())()
        return HttpResponse(str(tenant.single_company_id))

    async def failing(request):
        raise KeyError

    async def main():
        middleware = TenantMiddleware(view)
        assert asyncio.iscoroutinefunction(middleware)
        response = await middleware(RequestFactory().get("/"))
        with pytest.raises(KeyError):
            await TenantMiddleware(failing)(RequestFactory().get("/"))
        return response, state.tenant_or_none()

    response, after = asyncio.run(main())
    assert response.content == str(depts.c).encode()
    assert after is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_asgi_requests_see_their_own_tenant(async_client, tenants):
    with state.unscoped():
        for key in ("a", "c"):
            Department.objects.create(company_id=getattr(tenants, key), name=f"{key}-dept")

    async def main():
        responses = await asyncio.gather(
            *[
                async_client.get("/departments", headers=async_header(c))
                for c in (tenants.a, tenants.c, tenants.a, tenants.c)
            ]
        )
        # The test client keeps the views' connection open; close it in the thread that owns it.
        await sync_to_async(lambda: connection.close())()
        return responses

    responses = asyncio.run(main())
    assert [names(r) for r in responses] == [["a-dept"], ["c-dept"], ["a-dept"], ["c-dept"]]
    assert state.tenant_or_none() is None
