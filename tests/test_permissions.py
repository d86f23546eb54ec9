"""Permission classes and the company mixin, through real requests; then the classes called directly."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import permissions as drf
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from cobee_django import audit, state
from cobee_django import permissions as ours
from cobee_django.permissions import (
    CanAccessCompany,
    CanAccessCorporation,
    HasScopes,
    HasTenant,
    TenantPermission,
)
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


# --- the classes called directly: composition built at run time, object checks, scope edge cases ---


class _Allow(TenantPermission):
    message, code = "allow", "allow"

    def has_permission(self, request, view):
        return True


class _Deny(TenantPermission):
    message, code = "deny", "deny"

    def has_permission(self, request, view):
        return False


class _DenyToo(_Deny):
    message, code = "deny too", "deny_too"


class _DrfDeny(drf.BasePermission):
    message, code = "drf deny", "drf_deny"

    def has_permission(self, request, view):
        return False


def _request(method="GET", user=None) -> Request:
    request = Request(getattr(APIRequestFactory(), method.lower())("/"))
    if user is not None:
        request.user = user
    return request


def _decide(composed):
    """Build the composition's instance as DRF does, ask it, and read the reason it carries."""
    permission = composed()
    allowed = permission.has_permission(_request(), SimpleNamespace())
    return allowed, getattr(permission, "message", None), getattr(permission, "code", None)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: _Allow & _Allow, (True, None, None)),
        (lambda: _Allow & _Deny, (False, "deny", "deny")),
        (lambda: _Deny & _Allow, (False, "deny", "deny")),
        (lambda: _Allow | _Deny, (True, None, None)),
        (lambda: _Deny | _Allow, (True, None, None)),
        (lambda: _Deny | _DenyToo, (False, "deny", "deny")),
        (lambda: _DenyToo | _Deny, (False, "deny too", "deny_too")),
        (lambda: ~_Allow, (False, None, None)),
        (lambda: ~_Deny, (True, None, None)),
        # DRF's class on the left: Python asks our (sub)metaclass's reflected operator first.
        (lambda: drf.AllowAny & _Deny, (False, "deny", "deny")),
        (lambda: _DrfDeny & _Allow, (False, "drf deny", "drf_deny")),
        (lambda: _DrfDeny | _DenyToo, (False, "drf deny", "drf_deny")),
        (lambda: _DrfDeny | _Allow, (True, None, None)),
        # Compositions compose again, keeping the refusing operand's reason.
        (lambda: (_Allow & _DenyToo) | _Deny, (False, "deny too", "deny_too")),
        (lambda: _Deny | (_Allow & _DenyToo), (False, "deny", "deny")),
        (lambda: (_Deny | _Allow) & _DenyToo, (False, "deny too", "deny_too")),
        (lambda: ~(_Deny | _DenyToo), (True, None, None)),
        (lambda: ~~_Deny, (False, None, None)),
        # A composition of DRF's classes on the left is DRF's: it refuses, with DRF's default body.
        (lambda: (drf.AllowAny & drf.AllowAny) & _DenyToo, (False, None, None)),
        (lambda: (drf.AllowAny & drf.AllowAny) | _DenyToo, (True, None, None)),
    ],
)
def test_compositions_built_at_run_time_decide_and_carry_the_refusing_reason(build, expected):
    assert _decide(build()) == expected


def test_a_composition_of_ours_with_drfs_is_ours():
    assert isinstance((drf.AllowAny & _Deny)(), ours.AND)
    assert isinstance((drf.AllowAny | _Deny)(), ours.OR)
    assert isinstance((~_Deny)(), ours.NOT)
    assert isinstance(((_Allow & _Deny) | drf.AllowAny)(), ours.OR)


def _view(**kwargs):
    return SimpleNamespace(kwargs=kwargs)


@pytest.fixture
def rows(depts):
    with state.unscoped():
        depts.rows = {key: Department.objects.get(pk=getattr(depts, f"{key}_dept").pk) for key in "abc"}
    return depts


@pytest.mark.parametrize("permission", [HasTenant, CanAccessCorporation, CanAccessCompany])
def test_object_checks_called_directly_hide_an_unreachable_row(rows, permission):
    request = _request()
    view = _view(companyId=str(rows.c), corporationId=str(rows.corp))
    with state.for_company(rows.a), pytest.raises(NotFound):
        permission().has_object_permission(request, view, rows.rows["c"])
    assert getattr(request._request, audit.DENIAL_ATTR) is audit.Denial.OBJECT_NOT_REACHABLE
    view = _view(companyId=str(rows.a), corporationId=str(rows.corp))
    with state.for_company(rows.a):
        assert permission().has_object_permission(_request(), view, rows.rows["a"]) is True
        assert permission().has_object_permission(_request(), view, object()) is True  # not a tenant row


def test_a_companys_object_check_wants_the_url_company_too(rows):
    request = _request()
    tenant = state.tenant_for_companies([rows.a, rows.b])
    with state.for_tenant(tenant), pytest.raises(NotFound):  # reachable, but not the URL's company
        CanAccessCompany().has_object_permission(request, _view(companyId=str(rows.a)), rows.rows["b"])
    assert getattr(request._request, audit.DENIAL_ATTR) is audit.Denial.OBJECT_NOT_REACHABLE


def test_object_checks_with_no_tenant_bound_hide_every_row(rows):
    for permission in (HasTenant, CanAccessCompany, CanAccessCorporation):
        with pytest.raises(NotFound):
            permission().has_object_permission(_request(), _view(companyId=str(rows.a)), rows.rows["a"])


class _ScopedView:
    required_scopes = ["read:a"]


def test_scopes_are_only_those_of_a_verified_token():
    # A user from another authentication class may carry a "scopes" attribute; it grants nothing.
    user = SimpleNamespace(is_authenticated=True, scopes={"read:a"})
    assert HasScopes().get_granted_scopes(_request(user=user)) == frozenset()
    assert HasScopes().has_permission(_request(user=user), _ScopedView()) is False
    granted = SimpleNamespace(is_authenticated=True, scopes=frozenset({"read:a"}))
    assert HasScopes().has_permission(_request(user=granted), _ScopedView()) is True


def test_a_user_without_scopes_or_authentication_flag_is_refused_without_a_crash(django_user_model):
    plain = django_user_model(username="staff")  # a session user: authenticated, no scopes
    assert HasScopes().has_permission(_request(user=plain), _ScopedView()) is False
    # A user object that does not say it is authenticated is not, whatever it carries.
    unflagged = SimpleNamespace(scopes=frozenset({"read:a"}))
    request = _request(user=unflagged)
    assert HasScopes().has_permission(request, _ScopedView()) is False
    assert getattr(request._request, audit.DENIAL_ATTR, None) is None  # DRF answers 401, not a denial


class _ReadWriteView:
    required_read_scopes = ["read:a"]
    required_write_scopes = ["write:a"]


def test_a_request_without_a_method_needs_the_read_scopes():
    request = _request()
    request._request.method = ""
    assert HasScopes().get_required_scopes(request, _ReadWriteView()) == frozenset({"read:a"})


@pytest.mark.parametrize("declared", ["read:a", 5, b"read:a"])
def test_required_scopes_must_be_a_list_of_strings(declared):
    view = type("BadView", (), {"required_scopes": declared})()
    with pytest.raises(ImproperlyConfigured, match="BadView's required scopes must be a list of strings"):
        HasScopes().required_scopes(view, "GET")


def test_a_view_without_scopes_names_itself_and_the_missing_attribute():
    view = type("BareView", (), {})()
    with pytest.raises(ImproperlyConfigured, match="BareView uses HasScopes but defines neither required_scopes nor"):
        HasScopes().required_scopes(view, "POST")


def test_has_tenant_called_directly_refuses_without_a_tenant_and_notes_why():
    request = _request()
    assert HasTenant().has_permission(request, _view()) is False
    assert getattr(request._request, audit.DENIAL_ATTR) is audit.Denial.NO_TENANT
    with state.for_company(uuid.uuid4()):
        assert HasTenant().has_permission(_request(), _view()) is True


@pytest.mark.parametrize("view", [SimpleNamespace(kwargs={}), SimpleNamespace(), SimpleNamespace(kwargs=None)])
def test_a_view_without_the_url_keyword_is_a_configuration_error_naming_the_setting(view):
    expected = (
        "SimpleNamespace has no URL keyword 'companyId'; check the URL pattern or the "
        "COMPANY_URL_KWARG / CORPORATION_URL_KWARG setting."
    )
    with pytest.raises(ImproperlyConfigured) as info:
        CanAccessCompany().has_permission(_request(), view)
    assert str(info.value) == expected
