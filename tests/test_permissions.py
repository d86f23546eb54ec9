"""Permission classes and the company mixin, through real requests."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from cobee_django import state
from tests.testapp.auth import header
from tests.testapp.models import Department, Employee

pytestmark = pytest.mark.urls("tests.testapp.urls")

READ = ["read:departments"]
WRITE = ["write:departments"]


@pytest.fixture
def depts(tenants):
    with state.unscoped():
        for key in ("a", "b", "c"):
            setattr(tenants, f"{key}_dept", Department.objects.create(company_id=getattr(tenants, key), name="d"))
    return tenants


def test_company_in_the_url_must_be_reachable(client, depts):
    ok = client.get(f"/companies/{depts.a}/departments", **header(depts.a, scopes=READ))
    assert ok.status_code == 200 and [d["id"] for d in ok.json()] == [depts.a_dept.pk]
    other = client.get(f"/companies/{depts.c}/departments", **header(depts.a, scopes=READ))
    assert other.status_code == 403
    assert other.json()["detail"]  # a useful message, no leak of what exists


def test_a_corporation_client_lists_one_company_at_a_time(client, depts):
    listed = client.get(f"/companies/{depts.b}/departments", **header(depts.a, depts.corp, scopes=READ))
    assert [d["id"] for d in listed.json()] == [depts.b_dept.pk]
    assert (
        client.get(f"/companies/{depts.c}/departments", **header(depts.a, depts.corp, scopes=READ)).status_code == 403
    )


@pytest.mark.parametrize("bad", ["not-a-uuid", "1234", "%00", "' OR 1=1 --"])
def test_a_malformed_company_id_is_a_404_not_a_500(client, depts, bad):
    response = client.get(f"/companies/{bad}/departments", **header(depts.a, scopes=READ))
    assert response.status_code == 404


def test_unauthenticated_is_401(client, depts):
    response = client.get(f"/companies/{depts.a}/departments")
    assert response.status_code == 401
    assert "insufficient_scope" not in response.get("WWW-Authenticate", "")


def test_create_assigns_the_url_company(client, depts):
    url = f"/companies/{depts.b}/departments"
    created = client.post(url, {"name": "new", "company": str(depts.a)}, **header(depts.a, depts.corp, scopes=WRITE))
    assert created.status_code == 201, created.content
    assert created.json()["company"] == str(depts.b)
    duplicate = client.post(url, {"name": "new"}, **header(depts.a, depts.corp, scopes=WRITE))
    assert duplicate.status_code == 400
    assert "non_field_errors" in duplicate.json()
    assert client.post(url, {"name": "x"}, **header(depts.c, scopes=WRITE)).status_code == 403


def test_create_checks_related_rows_against_the_tenant(client, depts):
    url = f"/companies/{depts.a}/employees"
    ok = client.post(url, {"email": "n@x", "department": depts.a_dept.pk}, **header(depts.a))
    assert ok.status_code == 201, ok.content
    other = client.post(url, {"email": "m@x", "department": depts.c_dept.pk}, **header(depts.a))
    assert other.status_code == 400
    assert "department" in other.json()
    with state.unscoped():
        assert not Employee.objects.filter(email="m@x").exists()


def test_create_in_an_unregistered_company_is_a_400(client, tenants):
    lone = uuid.uuid4()
    from django.test import override_settings

    from cobee_django.conf import user_settings

    with override_settings(COBEE_DJANGO={**user_settings(), "PROVISION_MEMBERSHIP": False}):
        response = client.post(f"/companies/{lone}/employees", {"email": "n@x", "department": ""}, **header(lone))
    assert response.status_code == 400


def test_object_level_checks_answer_404_for_another_tenants_object(client, depts):
    assert client.get(f"/departments/{depts.a_dept.pk}", **header(depts.a)).status_code == 200
    assert client.get(f"/departments/{depts.c_dept.pk}", **header(depts.a)).status_code == 404
    assert client.delete(f"/departments/{depts.c_dept.pk}", **header(depts.a)).status_code == 404
    url = f"/companies/{depts.a}/departments/{depts.b_dept.pk}"
    assert client.get(url, **header(depts.a, depts.corp)).status_code == 404  # not the URL's company
    url = f"/companies/{depts.b}/departments/{depts.b_dept.pk}"
    assert client.get(url, **header(depts.a, depts.corp)).status_code == 200
    with state.unscoped():
        assert Department.objects.filter(pk=depts.c_dept.pk).exists()


def test_corporation_in_the_url_must_be_the_tokens(client, depts):
    assert client.get(f"/corporations/{depts.corp}", **header(depts.a, depts.corp)).status_code == 200
    assert client.get(f"/corporations/{depts.other_corp}", **header(depts.a, depts.corp)).status_code == 403
    assert client.get(f"/corporations/{depts.corp}", **header(depts.a)).status_code == 403
    assert client.get("/corporations/zzz", **header(depts.a, depts.corp)).status_code == 404


@pytest.mark.parametrize(
    ("url", "method", "scopes", "status", "challenge_scope"),
    [
        ("/scoped", "get", ["read:a"], 200, None),
        ("/scoped", "post", ["read:a", "other"], 200, None),
        ("/scoped", "get", [], 403, "read:a"),
        ("/scoped", "get", ["read:ab"], 403, "read:a"),
        ("/read-write", "get", ["read:a"], 200, None),
        ("/read-write", "post", ["read:a"], 403, "write:a"),
        ("/read-write", "delete", ["read:a"], 403, "write:a"),
        ("/read-write", "post", ["write:a"], 200, None),
        ("/read-write", "get", ["write:a"], 403, "read:a"),
        ("/read-write", "head", ["read:a"], 200, None),
        ("/composed", "get", [], 200, None),  # HasScopes | HasTenant
        ("/not-scoped", "get", [], 200, None),  # ~HasScopes
        ("/not-scoped", "get", ["read:a"], 403, None),
    ],
)
def test_scopes(client, tenants, url, method, scopes, status, challenge_scope):
    response = getattr(client, method)(url, **header(tenants.a, scopes=scopes))
    assert response.status_code == status
    if challenge_scope:
        challenge = response["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="api", error="insufficient_scope", ')
        assert challenge.endswith(f'scope="{challenge_scope}"')
        assert "error_description=" in challenge
        assert response.json()["detail"]
    else:
        assert "insufficient_scope" not in response.get("WWW-Authenticate", "")


def test_scopes_of_a_view_without_configuration_are_a_configuration_error(client, tenants):
    with pytest.raises(ImproperlyConfigured):
        client.get("/unconfigured", **header(tenants.a, scopes=["read:a"]))


def test_scopes_without_credentials_are_a_401(client):
    response = client.get("/scoped")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
