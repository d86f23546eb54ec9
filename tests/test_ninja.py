"""cobee_django.contrib.ninja: its OpenAPI document, its answers without the package's NinjaAPI.

The request cases (cross-tenant, tokens, scopes, paths) are tests/test_serving_surfaces.py's, which
serve the test project's Ninja APIs (testproject/api/ninja_api.py) sync and async.
"""

from __future__ import annotations

import pytest
from ninja import NinjaAPI as PlainNinjaAPI
from ninja.testing import TestClient

from cobee_django.contrib.ninja import TokenAuth, document_scopes, install, operation_scopes
from testproject.api.ninja_api import api, async_api


@pytest.mark.parametrize("ninja_api", [api, async_api], ids=["sync", "async"])
def test_the_openapi_document_lists_each_operations_scopes(ninja_api, settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "OPENAPI_TOKEN_URL": "https://auth.example/oauth/token"}
    schema = ninja_api.get_openapi_schema()
    securities = {
        (method, path): operation["security"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    employees = "/api/v3/{}/companies/{{companyId}}/employees".format("ninja" if ninja_api is api else "ninja-async")
    assert securities[("get", employees)] == [{"oauth2": ["read:employees"]}, {"bearerJWT": []}]
    assert securities[("post", employees)] == [{"oauth2": ["write:employees"]}, {"bearerJWT": []}]
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {"oauth2", "bearerJWT"}
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow == {
        "tokenUrl": "https://auth.example/oauth/token",
        "scopes": {"read:employees": "read:employees", "write:employees": "write:employees"},
    }
    assert schemes["bearerJWT"]["bearerFormat"] == "JWT"


def test_operation_scopes_by_operation_id():
    scopes = operation_scopes(api)
    assert scopes["testproject_api_ninja_api_list_employees"] == frozenset({"read:employees"})
    assert scopes["testproject_api_ninja_api_delete_employee"] == frozenset({"write:employees"})


def make_plain_api(installed: bool) -> PlainNinjaAPI:
    plain = PlainNinjaAPI(urls_namespace=f"plain-{installed}")

    @plain.get("/companies/{companyId}/things", auth=TokenAuth(scopes=["read:things"]))
    def things(request, companyId: str):
        return {"ok": True}

    if installed:
        install(plain)
    return plain


@pytest.mark.parametrize("installed", [True, False])
def test_a_refusal_is_a_4xx_with_or_without_install(db, installed):
    client = TestClient(make_plain_api(installed))
    response = client.get("/companies/5e9e9701-9883-447d-9884-46e75993e33b/things")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    # install() adds the challenge; without it the status and body still hold.
    assert (response.headers.get("WWW-Authenticate") == 'Bearer realm="api"') is installed


def test_document_scopes_rewrites_a_plain_ninja_schema():
    plain = make_plain_api(installed=True)
    schema = document_scopes(plain, plain.get_openapi_schema(path_prefix="/api/"))
    operation = schema["paths"]["/api/companies/{companyId}/things"]["get"]
    assert operation["security"] == [{"oauth2": ["read:things"]}, {"bearerJWT": []}]
    assert "TokenAuth" not in schema["components"]["securitySchemes"]


def test_scopes_must_be_a_list_of_strings():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        TokenAuth(scopes="read:things")
