"""Tenancy errors inside the admin and plain Django views are 4xx answers with constant bodies, never 500s.

DRF views answer these errors themselves (tests/test_request_errors.py); here no DRF is involved, so
TenantMiddleware.process_exception must answer them.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.urls import path

from cobee_django import state
from cobee_django.exceptions import CompanyNotNamed, TenantViolation
from cobee_django.middleware import NO_TENANT_PAGE_MESSAGE, UNAUTHENTICATED_VIEW_MESSAGE
from tests.testapp.models import Department

pytestmark = pytest.mark.urls(__name__)

#: Set by each test: the company a write aims at.
TARGET: dict[str, object] = {}


def count_departments(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(Department.objects.count()))


def write_elsewhere(request: HttpRequest) -> HttpResponse:
    with state.for_company(TARGET["bound"]):
        Department.objects.create(name="stray", company_id=TARGET["company"])
    return HttpResponse("written")


def create_unnamed(request: HttpRequest) -> HttpResponse:
    with state.for_corporation(TARGET["corporation"]):
        Department.objects.create(name="unnamed")
    return HttpResponse("written")


async def count_departments_async(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(await sync_to_async(Department.objects.count)()))


def broken(request: HttpRequest) -> HttpResponse:
    raise ValueError("a plain bug")


class ErrorsAdminSite(AdminSite):
    """An admin site whose extra pages query tenant models the way admin views do."""

    def get_urls(self):  # type: ignore[no-untyped-def]
        return [
            path("count/", self.admin_view(count_departments)),
            path("write-elsewhere/", self.admin_view(write_elsewhere)),
            *super().get_urls(),
        ]


site = ErrorsAdminSite(name="errors_admin")

urlpatterns = [
    path("admin/", site.urls),
    path("count", count_departments),
    path("count-async", count_departments_async),
    path("write-elsewhere", write_elsewhere),
    path("create-unnamed", create_unnamed),
    path("broken", broken),
]


def department_count() -> int:
    with state.unscoped():
        return Department.objects.count()


@pytest.fixture
def staff_client(client, django_user_model):
    """A staff member with no company granted, so no tenant is bound for them."""
    client.force_login(django_user_model.objects.create_user("staff", is_staff=True))
    return client


def assert_constant_refusal(response, status: int, body: str, *secrets: object) -> None:
    assert response.status_code == status
    text = response.content.decode()
    assert text == body
    for secret in secrets:
        assert str(secret) not in text
    # The request's binding was undone on the way out.
    assert state.tenant_or_none() is None and not state.is_unscoped()


@pytest.mark.parametrize("url", ["/admin/count/", "/count", "/count-async"])
def test_reading_a_tenant_model_with_no_tenant_bound_is_a_403(staff_client, tenants, url):
    """A staff member with no company (or a view that binds none) gets a 403, not a 500."""
    assert_constant_refusal(staff_client.get(url), 403, NO_TENANT_PAGE_MESSAGE)


@pytest.mark.parametrize("url", ["/count", "/count-async"])
@pytest.mark.parametrize("authorization", [None, "Bearer some.access.token"])
def test_an_unauthenticated_plain_view_is_a_401_saying_what_to_add(client, tenants, url, authorization):
    """No session and no one read the token: never the admin's text, but what the view lacks."""
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get(url, **headers)
    assert_constant_refusal(response, 401, UNAUTHENTICATED_VIEW_MESSAGE)
    assert "token_required" in UNAUTHENTICATED_VIEW_MESSAGE
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("url", ["/admin/write-elsewhere/", "/write-elsewhere"])
def test_a_write_outside_the_tenant_is_a_403_that_writes_nothing(admin_client, tenants, url):
    TARGET.update(bound=tenants.a, company=tenants.c)
    before = department_count()
    assert_constant_refusal(admin_client.post(url), 403, TenantViolation.default_detail, tenants.c)
    assert department_count() == before


def test_a_corporation_write_without_a_company_is_a_400_saying_how_to_name_it(admin_client, tenants):
    TARGET.update(corporation=tenants.corp)
    before = department_count()
    assert_constant_refusal(admin_client.post("/create-unnamed"), 400, CompanyNotNamed.default_detail)
    assert department_count() == before


def test_other_exceptions_still_reach_djangos_handler(client, tenants):
    with pytest.raises(ValueError, match="a plain bug"):
        client.get("/broken")
