"""The drf-spectacular extension: security schemes, the token URL and each operation's scopes."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from cobee_django.contrib.drf_spectacular import JWTAuthenticationScheme, required_scopes
from tests.testapp import apiviews


def schema_of(urlconf: str = "tests.testapp.apiviews") -> dict:
    schema = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
    validate_schema(schema)
    return schema


def security(schema: dict, path: str, method: str) -> list[dict]:
    return schema["paths"][path][method]["security"]


def test_schemes_are_oauth2_client_credentials_and_bearer_jwt():
    schemes = schema_of()["components"]["securitySchemes"]
    assert schemes["oauth2"]["type"] == "oauth2"
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "http://127.0.0.1:8000/oauth/token"
    # Every scope of every operation is declared in the flow.
    assert sorted(flow["scopes"]) == [
        "admin:everything",
        "read:corporation",
        "read:departments",
        "read:employees",
        "write:employees",
    ]
    assert schemes["bearerJWT"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerJWT"]["description"],
    }


@pytest.mark.parametrize(
    ("path", "method", "scopes"),
    [
        ("/api/v3/companies/{companyId}/employees", "get", ["read:employees"]),
        ("/api/v3/companies/{companyId}/employees", "post", ["write:employees"]),
        ("/api/v3/companies/{companyId}/employees/{id}", "get", ["read:employees"]),
        ("/api/v3/companies/{companyId}/employees/{id}", "patch", ["write:employees"]),
        ("/api/v3/companies/{companyId}/employees/{id}", "delete", ["write:employees"]),
        ("/api/v3/corporations/{corporationId}/departments", "get", ["read:corporation", "read:departments"]),
        ("/api/v3/employees/{id}", "get", []),
    ],
)
def test_each_operation_lists_the_scopes_its_method_requires(path, method, scopes):
    assert security(schema_of(), path, method) == [{"oauth2": scopes}, {"bearerJWT": []}]


def test_permissions_composed_with_or_are_alternatives():
    # HasScopes | HasTenant: the scope, or no scope at all (a tenant suffices).
    assert security(schema_of(), "/api/v3/either", "get") == [
        {"oauth2": ["admin:everything"]},
        {"oauth2": []},
        {"bearerJWT": []},
    ]


def test_views_without_jwt_authentication_have_no_security():
    operation = schema_of()["paths"]["/health"]["get"]
    assert "security" not in operation or operation["security"] in ([], [{}])


def test_token_url_setting(settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "OPENAPI_TOKEN_URL": "https://login.example/oauth/token"}
    flow = schema_of()["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://login.example/oauth/token"


def test_token_url_follows_the_issuer(settings):
    settings.COBEE_DJANGO = {"ISSUER": "https://tenant.eu.auth0.com/", "AUDIENCE": "https://api.example"}
    flow = schema_of()["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "https://tenant.eu.auth0.com/oauth/token"


def test_scopes_of_a_view_without_scope_attributes_are_empty_with_a_warning():
    class Broken(apiviews.CompanyEmployees):
        required_read_scopes = None
        required_write_scopes = None

    from drf_spectacular.drainage import GENERATOR_STATS

    scheme = JWTAuthenticationScheme(apiviews.JWTAuthentication)

    class Registry:
        pass

    class FakeSchema:
        view = Broken()
        method = "GET"
        registry = Registry()

    GENERATOR_STATS.reset()
    assert scheme.get_security_requirement(FakeSchema()) == [{"oauth2": []}, {"bearerJWT": []}]
    assert any("neither required_scopes" in w for w in GENERATOR_STATS._warn_cache)


def test_required_scopes_helper():
    view = apiviews.CompanyEmployees()
    assert required_scopes(view, "get") == [frozenset({"read:employees"})]
    assert required_scopes(view, "PUT") == [frozenset({"write:employees"})]


@pytest.mark.urls("tests.testapp.apiviews")
def test_schema_is_served_over_http(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert security(schema, "/api/v3/companies/{companyId}/employees", "post") == [
        {"oauth2": ["write:employees"]},
        {"bearerJWT": []},
    ]


def test_the_test_project_serves_its_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["info"]["title"] == "Cobee Partner API (test project)"
    flow = schema["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "http://127.0.0.1:8000/oauth/token"
    assert sorted(flow["scopes"]) == ["read:employees", "write:employees"]
    employees = schema["paths"]["/api/v3/companies/{companyId}/employees"]
    assert employees["get"]["security"] == [{"oauth2": ["read:employees"]}, {"bearerJWT": []}]
    assert employees["post"]["security"] == [{"oauth2": ["write:employees"]}, {"bearerJWT": []}]
    employee = schema["paths"]["/api/v3/companies/{companyId}/employees/{employeeId}"]
    assert employee["patch"]["security"][0] == {"oauth2": ["write:employees"]}
    assert employee["delete"]["security"][0] == {"oauth2": ["write:employees"]}
    assert schema["paths"]["/api/v3/employees"]["get"]["security"][0] == {"oauth2": ["read:employees"]}


def test_the_extension_is_registered():
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    assert JWTAuthenticationScheme in OpenApiAuthenticationExtension._registry


@pytest.mark.parametrize(
    ("mode", "names"),
    [
        ("disabled", ["oauth2", "bearerJWT"]),
        ("allowed", ["oauth2", "bearerJWT", "dpopJWT"]),
        ("required", ["oauth2", "dpopJWT"]),
    ],
)
def test_the_dpop_scheme_follows_dpop_mode(settings, mode, names):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "DPOP_MODE": mode, "DPOP_ALGORITHMS": ["ES256"]}
    schema = schema_of()
    assert sorted(schema["components"]["securitySchemes"]) == sorted(names)
    requirements = security(schema, "/api/v3/companies/{companyId}/employees", "get")
    assert [next(iter(r)) for r in requirements] == names
    if mode != "disabled":
        dpop = schema["components"]["securitySchemes"]["dpopJWT"]
        assert (dpop["type"], dpop["scheme"]) == ("http", "DPoP")
        assert "ES256" in dpop["description"]
