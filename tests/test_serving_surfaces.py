"""Every way of serving the employees API gets the DRF views' cases: cross-tenant, missing or bad token,
wrong scope, malformed path, bad body; never a 500, and the tenant unbound after each request.

The surfaces (testproject.api.surfaces and ninja_api): plain function views sync and async
(``token_required``), class-based views sync and async (``TokenRequiredMixin``), adrf (async DRF with
the package's DRF classes), Django Ninja sync and async (``cobee_django.contrib.ninja``); ``drf`` is the
DRF API itself, so every matrix is checked against the reference in the same run. The matrices are
tests/test_api.py's. tests/test_asgi_server.py serves the async ones under real ASGI servers.
"""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from cobee_django.bearer import INSUFFICIENT_SCOPE_DESCRIPTION, INVALID_TOKEN_DESCRIPTION
from cobee_django.state import for_company, tenant_or_none, unscoped
from testproject.api.models import Employee
from tests.test_api import BAD_COMPANY_IDS, COMPANY_REACH, READ, READ_WRITE, SCOPE_MATRIX, as_client, world

__all__ = ["as_client", "world"]  # fixtures of tests/test_api.py used here

SURFACES = ["drf", "plain", "plain-async", "cbv", "cbv-async", "adrf", "ninja", "ninja-async"]
WRITE_ONLY = ["write:employees"]


def base(surface: str) -> str:
    return "/api/v3" if surface == "drf" else f"/api/v3/{surface}"


def employees_url(surface: str, company) -> str:
    return f"{base(surface)}/companies/{company.id if hasattr(company, 'id') else company}/employees"


def listed_ids(body) -> set[str]:
    return {item["id"] for item in body["employees"]}


def caller(world, as_client, name: str, scopes=READ_WRITE):
    if name == "corp":
        return as_client(world.a, world.corp, scopes=scopes)
    return as_client(getattr(world, name), scopes=scopes)


@pytest.fixture(autouse=True)
def _unbound_afterwards():
    yield
    assert tenant_or_none() is None  # no request left a tenant bound in this thread


@pytest.fixture(params=SURFACES)
def surface(request) -> str:
    return request.param


@pytest.mark.parametrize(("who", "target", "status"), COMPANY_REACH)
def test_which_company_urls_a_caller_reaches(world, as_client, surface, who, target, status):
    company = getattr(world, target)
    response = caller(world, as_client, who).get(employees_url(surface, company))
    assert response.status_code == status, response.content
    if status == 200:
        with for_company(company.id):
            expected = {str(pk) for pk in Employee.objects.values_list("id", flat=True)}
        assert listed_ids(response.json()) == expected
    else:
        assert response.json() == {"detail": "This company is not one your credentials reach."}


@pytest.mark.parametrize("company_id", BAD_COMPANY_IDS)
def test_malformed_or_unknown_company_is_refused(world, as_client, surface, company_id):
    response = as_client(world.a).get(f"{base(surface)}/companies/{company_id}/employees")
    assert response.status_code == (404 if uuid_or_none(company_id) is None else 403)


def uuid_or_none(value: str):
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value else None


@pytest.mark.parametrize(("scopes", "method", "status"), SCOPE_MATRIX)
def test_reads_need_read_scope_and_writes_write_scope(world, as_client, surface, scopes, method, status):
    api = as_client(world.a, scopes=scopes)
    ana = world.employees["ana"]
    collection = employees_url(surface, world.a)
    path = collection if method in ("get", "post") else f"{collection}/{ana.id}"
    data = {"email": "new@a.example", "legalId": "87654321X", "name": "New", "surname": "Person"}
    response = getattr(api, method)(path, data if method != "get" else None, format="json")
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"detail": INSUFFICIENT_SCOPE_DESCRIPTION}
        challenge = response["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge and "scope=" in challenge
    with for_company(world.a.id):
        assert not Employee.objects.filter(email="new@a.example").exists()
        assert Employee.objects.get(pk=ana.pk).state == ("removed" if status == 204 else "active")


def test_no_token_is_401_with_a_bearer_challenge(world, surface):
    response = APIClient().get(employees_url(surface, world.a))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert "Authorization" in response["Vary"]


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer not.a.token", 401),
        ("Bearer a,b", 400),
        ("Bearer ", 400),
        ("Bearer a b", 400),
    ],
)
def test_a_bad_token_or_header_is_refused_per_rfc_6750(world, surface, header, status):
    response = APIClient().get(employees_url(surface, world.a), HTTP_AUTHORIZATION=header)
    assert response.status_code == status
    error = "invalid_token" if status == 401 else "invalid_request"
    assert f'error="{error}"' in response["WWW-Authenticate"]
    if status == 401:
        assert response.json() == {"detail": INVALID_TOKEN_DESCRIPTION}


def test_a_token_in_the_url_is_400(world, as_client, cobee_issuer, surface):
    token = cobee_issuer.make_token(world.a.id, scopes=READ)
    response = APIClient().get(f"{employees_url(surface, world.a)}?access_token={token}")
    assert response.status_code == 400
    assert token not in response.content.decode()


@pytest.mark.parametrize("target", ["dan", "eva", "missing", "not-a-uuid"])
def test_another_companys_or_unknown_employee_is_404(world, as_client, surface, target):
    employee_id = {"missing": uuid.uuid4(), "not-a-uuid": "not-a-uuid"}.get(target) or world.employees[target].id
    api = as_client(world.a, world.corp)  # even a corporation-wide caller: dan is in B, not in A
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"{employees_url(surface, world.a)}/{employee_id}", {}, format="json")
        assert response.status_code == 404, (method, response.content)
    with unscoped():
        assert Employee.objects.filter(state="removed").count() == 1


def test_create_puts_the_row_in_the_url_company(world, as_client, surface):
    api = as_client(world.a, world.corp)
    data = {"email": "zoe@a.example", "legalId": "11111111H", "name": "Zoe", "surname": "Vidal"}
    response = api.post(employees_url(surface, world.a), {**data, "companyId": str(world.c.id)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["companyId"] == str(world.a.id)
    with unscoped():
        assert Employee.objects.get(email="zoe@a.example").company_id == world.a.id


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"email": "x"}',
        b'{"email": "no-at", "legalId": "1", "name": "N", "surname": "S"}',
        b'{"email": "ANA@a.example", "legalId": "99999999R", "name": "N", "surname": "S"}',
        b'{"email": 5, "legalId": "1", "name": "N", "surname": "S"}',
    ],
)
def test_a_bad_body_is_a_4xx_never_a_500(world, as_client, surface, body):
    api = as_client(world.a)
    with unscoped():
        before = Employee.objects.count()
    response = api.post(employees_url(surface, world.a), body, content_type="application/json")
    assert response.status_code in (400, 422), response.content  # Ninja answers schema errors 422
    with unscoped():
        assert Employee.objects.count() == before


@pytest.mark.parametrize(
    ("who", "corporation", "status"),
    [("corp", "corp", 200), ("corp", "other_corp", 403), ("a", "corp", 403), ("solo", "corp", 403)],
)
def test_the_corporation_report(world, as_client, surface, who, corporation, status):
    corporation_id = getattr(world, corporation).id
    url = f"{base(surface)}/corporations/{corporation_id}/consumptions?payroll=2026-10"
    response = caller(world, as_client, who).get(url)
    assert response.status_code == status, response.content
    if status == 200:
        companies = {c["companyId"]: c["total"]["amountInCents"] for c in response.json()["companies"]}
        assert companies == {str(world.a.id): 3000, str(world.b.id): 7000}


@pytest.mark.parametrize("corporation_id", ["nope", "0B7F3C55-3C1E-4A8E-9A57-1F2D8E0C9A11"])
def test_a_malformed_corporation_is_404(world, as_client, surface, corporation_id):
    url = f"{base(surface)}/corporations/{corporation_id}/consumptions?payroll=2026-10"
    assert caller(world, as_client, "corp").get(url).status_code == 404


def test_a_bad_report_query_is_400(world, as_client, surface):
    url = f"{base(surface)}/corporations/{world.corp.id}/consumptions?payroll=2026-13"
    assert caller(world, as_client, "corp").get(url).status_code == 400
