"""Errors a client meets: tenancy exceptions inside DRF views are 4xx, one 403 body per refusal, and
responses of token-authenticated views are never stored by shared caches."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import override_settings
from rest_framework.views import exception_handler

from cobee_django import state
from cobee_django.exceptions import (
    CobeeDjangoError,
    CompanyNotNamed,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    NoTenantBound,
    TenantError,
    TenantViolation,
)
from tests.testapp.auth import header
from tests.testapp.models import Department

pytestmark = pytest.mark.urls("tests.testapp.urls")

READ = ["read:departments"]


def custom_handler(exc, context):
    """A project's own handler that calls DRF's, as DRF's docs show."""
    response = exception_handler(exc, context)
    if response is not None:
        response.data["handled_by"] = "custom"
    return response


def department_count() -> int:
    with state.unscoped():
        return Department.objects.count()


# --- tenancy exceptions inside a request --------------------------------------------------------------


def test_anonymous_request_on_a_view_without_permissions_is_a_401_with_the_challenge(client, tenants):
    response = client.get("/token/departments")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    # The developer learns which permission class the view lacks; nothing about data.
    assert "HasTenant" in response.json()["detail"]


@override_settings(REST_FRAMEWORK={"EXCEPTION_HANDLER": "tests.test_request_errors.custom_handler"})
def test_a_custom_handler_that_calls_drfs_gets_the_same_answers(client, cobee_api_client, tenants):
    response = client.get("/token/departments")
    assert response.status_code == 401 and response.json()["handled_by"] == "custom"
    assert response["WWW-Authenticate"].startswith("Bearer ")
    refused = cobee_api_client(company=tenants.a).post(
        "/token/write-elsewhere", {"company": str(tenants.c)}, format="json"
    )
    assert refused.status_code == 403 and refused.json()["handled_by"] == "custom"


def test_the_same_view_answers_a_token(cobee_api_client, tenants):
    assert cobee_api_client(company=tenants.a).get("/token/departments").status_code == 200


def test_a_tenant_refusal_is_a_403_and_writes_nothing(cobee_api_client, tenants):
    before = department_count()
    response = cobee_api_client(company=tenants.a).post(
        "/token/write-elsewhere", {"company": str(tenants.c)}, format="json"
    )
    assert response.status_code == 403
    assert response.json() == {"detail": TenantViolation.default_detail}
    assert str(tenants.c) not in response.content.decode()
    assert department_count() == before


def test_a_corporation_token_creating_without_a_company_is_a_400_saying_how_to_name_it(cobee_api_client, tenants):
    before = department_count()
    response = cobee_api_client(company=tenants.a, corporation=tenants.corp).post(
        "/token/departments", {"name": "new"}, format="json"
    )
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "companyId" in detail and "CompanyFromURLMixin" in detail
    assert department_count() == before


def test_a_company_token_creating_without_a_company_gets_its_own(cobee_api_client, tenants):
    response = cobee_api_client(company=tenants.a).post("/token/departments", {"name": "new"}, format="json")
    assert response.status_code == 201 and response.json()["company"] == str(tenants.a)


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_anonymous_request_is_a_401_too(async_client, tenants):
    async def main():
        response = await async_client.get("/token/departments")
        await sync_to_async(lambda: connection.close())()
        return response

    response = asyncio.run(main())
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert state.tenant_or_none() is None


def test_outside_a_request_the_tenant_errors_keep_their_message_and_base_classes():
    error = NoTenantBound("No tenant is bound. Use for_company().")
    assert str(error) == "No tenant is bound. Use for_company()."
    assert isinstance(error, TenantError) and isinstance(error, CobeeDjangoError)
    assert error.detail == NoTenantBound.default_detail  # what a client would see: constant
    assert issubclass(CompanyNotNamed, TenantViolation)
    with pytest.raises(TenantError), state.unscoped():
        raise TenantViolation("moved")


# --- one 403 body per refusal, whatever the composition ---------------------------------------------


@pytest.mark.parametrize(
    ("company", "scopes", "status"),
    [
        ("c", READ, 403),  # the company is not reachable
        ("a", [], 403),  # the scope is missing
        ("a", READ, 200),
    ],
)
def test_listed_and_anded_permissions_answer_the_same(client, tenants, company, scopes, status):
    url = f"companies/{tenants.a if company == 'a' else tenants.c}/departments"
    anded = client.get(f"/{url}", **header(tenants.a, scopes=scopes))
    listed = client.get(f"/list-style/{url}", **header(tenants.a, scopes=scopes))
    assert anded.status_code == listed.status_code == status
    assert anded.json() == listed.json()
    assert anded.get("WWW-Authenticate") == listed.get("WWW-Authenticate")


def test_a_composed_refusal_carries_the_refusing_operands_message(client, tenants):
    from cobee_django.permissions import CanAccessCompany, HasScopes

    refused = client.get(f"/companies/{tenants.c}/departments", **header(tenants.a, scopes=READ))
    assert refused.json() == {"detail": CanAccessCompany.message}
    no_scope = client.get(f"/companies/{tenants.a}/departments", **header(tenants.a))
    assert no_scope.json() == {"detail": HasScopes.message}
    assert 'error="insufficient_scope"' in no_scope["WWW-Authenticate"]
    # With |, both operands refused: the first one's reason, as a list would give.
    either = client.get(f"/or-style/companies/{tenants.c}/departments", **header(tenants.a))
    assert either.status_code == 403 and either.json() == {"detail": HasScopes.message}
    assert client.get(f"/or-style/companies/{tenants.a}/departments", **header(tenants.a)).status_code == 200


def test_drf_permissions_composed_with_ours_keep_the_reason(client, tenants):
    from rest_framework.permissions import AllowAny

    from cobee_django.permissions import AND, HasScopes

    composed = AllowAny & HasScopes
    assert composed.operator_class is AND
    assert (HasScopes & AllowAny).operator_class is AND
    assert ((HasScopes & AllowAny) & AllowAny).operator_class is AND


# --- shared caches ------------------------------------------------------------------------------------


def assert_private(response) -> None:
    assert "private" in response["Cache-Control"], response.status_code
    assert "public" not in response["Cache-Control"]
    assert "Authorization" in response["Vary"]


def test_every_answer_of_a_token_authenticated_view_is_private(client, cobee_api_client, tenants):
    url = f"/token/companies/{tenants.a}/departments"
    ok = cobee_api_client(company=tenants.a, scopes=READ).get(url)
    assert ok.status_code == 200
    assert_private(ok)
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert_private(anonymous)
    bad_token = client.get(url, HTTP_AUTHORIZATION="Bearer abc.def.ghi")
    assert bad_token.status_code == 401
    assert_private(bad_token)
    two_credentials = client.get(f"{url}?access_token=x", HTTP_AUTHORIZATION="Bearer abc.def.ghi")
    assert two_credentials.status_code == 400
    assert_private(two_credentials)
    no_scope = cobee_api_client(company=tenants.a).get(url)
    assert no_scope.status_code == 403
    assert_private(no_scope)
    other = cobee_api_client(company=tenants.a, scopes=READ).get(f"/token/companies/{tenants.c}/departments")
    assert other.status_code == 403
    assert_private(other)
    malformed = cobee_api_client(company=tenants.a, scopes=READ).get("/token/companies/nope/departments")
    assert malformed.status_code == 404
    assert_private(malformed)


@pytest.mark.urls("testproject.urls")
def test_the_test_projects_api_answers_are_private(cobee_api_client, tenants):
    response = cobee_api_client(company=tenants.a, scopes=["read:employees"]).get(
        f"/api/v3/companies/{tenants.a}/employees"
    )
    assert response.status_code == 200
    assert_private(response)


def test_views_without_token_authentication_are_left_alone(client, tenants):
    response = client.get(f"/companies/{tenants.a}/departments", **header(tenants.a, scopes=READ))
    assert response.status_code == 200
    assert "private" not in response.get("Cache-Control", "")


# --- one exceptions module; the old import locations keep working -------------------------------------


def test_every_error_of_the_package_is_a_cobee_django_error_in_the_exceptions_module():
    """One errors module: every exception class cobee_django defines (private helpers aside) lives in
    ``cobee_django.exceptions``, under ``CobeeDjangoError``; the development issuer's own answers aside."""
    import importlib
    import inspect
    import pkgutil

    import cobee_django

    found = []
    for info in pkgutil.walk_packages(cobee_django.__path__, "cobee_django."):
        if ".migrations" in info.name or info.name.startswith("cobee_django.devissuer"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for name, value in vars(module).items():
            public = not name.startswith("_")
            if public and inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found.append(f"{info.name}.{name}")
    assert found and all(name.startswith("cobee_django.exceptions.") for name in found), found
    from cobee_django import exceptions
    from cobee_django.exceptions import Reason, ThrottleUnavailable, _RetryLater

    for name in found:
        assert issubclass(getattr(exceptions, name.rpartition(".")[2]), CobeeDjangoError), name

    assert Reason.__module__ == "cobee_django.exceptions"
    assert "__init__" not in vars(ThrottleUnavailable) and issubclass(ThrottleUnavailable, _RetryLater)


def test_no_name_is_kept_under_an_old_home():
    """Nothing was released: moved names live in one place only (no aliases, no deprecation shims)."""
    from cobee_django import authentication, jwks, state

    old = {
        authentication: ["bearer_challenge", "INSUFFICIENT_SCOPE_DESCRIPTION", "INVALID_TOKEN_DESCRIPTION"],
        jwks: ["install_key_set", "uninstall_key_set", "installed_key_set"],
        state: ["get_tenant", "current_scope"],
    }
    for module, names in old.items():
        for name in names:
            assert not hasattr(module, name), f"{module.__name__}.{name}"
    for error in (InvalidToken, InvalidRequest, InsufficientScope):
        assert error.default_code and issubclass(error, CobeeDjangoError)


def test_permissions_do_not_import_the_middleware():
    import ast
    import pathlib

    import cobee_django.permissions as module

    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "middleware" not in imported and "authentication" not in imported


def test_has_scopes_answers_the_scopes_of_a_method():
    from cobee_django.permissions import HasScopes
    from tests.testapp.views import ReadWriteView, ScopedView

    assert HasScopes().required_scopes(ReadWriteView(), "GET") == {"read:a"}
    assert HasScopes().required_scopes(ReadWriteView(), "post") == {"write:a"}
    assert HasScopes().required_scopes(ScopedView(), "DELETE") == {"read:a"}


# --- one UUID rule -----------------------------------------------------------------------------------


def _spellings(company):
    text = str(company)
    return [text.upper(), company.hex, f"{{{text}}}", f"urn:uuid:{text}", f" {text}"]


def test_a_non_canonical_company_id_in_the_url_is_a_404_like_in_a_token(client, tenants):
    from cobee_django.uuids import parse_uuid

    ok = client.get(f"/companies/{tenants.a}/departments", **header(tenants.a, scopes=READ))
    assert ok.status_code == 200
    for spelling in _spellings(tenants.a):
        assert parse_uuid(spelling) is None
        response = client.get(f"/companies/{spelling}/departments", **header(tenants.a, scopes=READ))
        assert response.status_code == 404, spelling
    assert parse_uuid(str(tenants.a)) == tenants.a and parse_uuid(tenants.a) == tenants.a
    assert parse_uuid(5) is None and parse_uuid(None) is None


OWN_MODULES = [
    "authentication",
    "bearer",
    "checks",
    "conf",
    "exceptions",
    "jose",
    "jwks",
    "middleware",
    "contrib.drf_spectacular",
    "permissions",
    "tokens",
    "uuids",
    "testing.issuer",
]


@pytest.mark.parametrize("name", OWN_MODULES)
def test_each_module_lists_its_public_api(name):
    import importlib

    module = importlib.import_module(f"cobee_django.{name}")
    assert len(set(module.__all__)) == len(module.__all__)
    for exported in module.__all__:
        assert hasattr(module, exported), exported
