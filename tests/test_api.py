"""The test project's API: Cobee's shapes, filters, pagination, field errors, scopes and tenants.

Requests carry real tokens from cobee_django.testing's API client (its key set trusted without HTTP);
the end-to-end suite (test_e2e_live.py) does the same over real HTTP with the dev issuer.
"""

from __future__ import annotations

import csv
import datetime
import io
import uuid
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from cobee_django.models import Company, Corporation
from cobee_django.state import for_company, tenant_or_none, unscoped
from cobee_django.testing import TokenIssuer
from testproject.api.models import BenefitBagConfig, BenefitModel, Consumption, Employee
from testproject.api.renderers import safe_cell

READ = ["read:employees"]
READ_WRITE = ["read:employees", "write:employees"]


@dataclass
class World:
    corp: Corporation
    other_corp: Corporation
    a: Company  # in corp
    b: Company  # in corp
    c: Company  # in other_corp
    solo: Company  # no corporation
    employees: dict[str, Employee]
    models: dict[str, BenefitModel]


def make_employee(company, key, **fields):
    defaults = {
        "email": f"{key}@{company.name.lower()}.example",
        "legal_id": f"{abs(hash((company.name, key))) % 10**8:08d}X",
        "name": key.capitalize(),
        "surname": f"Surname {key}",
        "internal_id": f"INT-{key}",
        "gross_salary_in_cents": 3_000_000,
    }
    defaults.update(fields)
    with for_company(company.id):
        return Employee.objects.create(company=company, **defaults)


@pytest.fixture
def world(db):
    corp = Corporation.objects.create(name="Corp")
    other_corp = Corporation.objects.create(name="Other corp")
    a = Company.objects.create(name="A", corporation=corp)
    b = Company.objects.create(name="B", corporation=corp)
    c = Company.objects.create(name="C", corporation=other_corp)
    solo = Company.objects.create(name="Solo")
    models = {}
    for company in (a, b, c, solo):
        with for_company(company.id):
            model = BenefitModel.objects.create(company=company, name=f"Plan {company.name}")
            BenefitBagConfig.objects.create(
                company=company,
                benefit_model=model,
                name="Meal",
                allowed_for=["meal-benefit"],
                limit_amount_in_cents=22_000,
            )
            models[company.name] = model
    employees = {
        "ana": make_employee(a, "ana", state="active", model=models["A"]),
        "bea": make_employee(a, "bea", state="not-active"),
        "carl": make_employee(a, "carl", state="active", internal_id="X-9"),
        "dan": make_employee(b, "dan"),
        "eva": make_employee(c, "eva"),
        "fer": make_employee(solo, "fer"),
        # The same person in two companies of the corporation.
        "moved_a": make_employee(a, "moved", legal_id="12345678Z", state="removed"),
        "moved_b": make_employee(b, "moved", legal_id="12345678Z"),
    }
    for key, company, amount in (
        ("ana", a, 1000),
        ("moved_a", a, 2000),
        ("moved_b", b, 3000),
        ("dan", b, 4000),
        ("eva", c, 5000),
    ):
        with for_company(company.id):
            Consumption.objects.create(
                company=company,
                employee=employees[key],
                category="meal-benefit",
                amount_in_cents=amount,
                payroll="2026-10",
                date=datetime.date(2026, 10, 5),
            )
    with for_company(a.id):
        Consumption.objects.create(
            company=a,
            employee=employees["ana"],
            category="meal-benefit",
            amount_in_cents=99,
            payroll="2026-11",
            date=datetime.date(2026, 11, 5),
        )
    return World(corp, other_corp, a, b, c, solo, employees, models)


@pytest.fixture
def as_client(cobee_api_client):
    def make(company, corporation=None, scopes=READ_WRITE):
        return cobee_api_client(company=company.id, corporation=corporation.id if corporation else None, scopes=scopes)

    return make


def employees_url(company):
    return f"/api/v3/companies/{company.id}/employees"


def ids(body):
    return {item["id"] for item in body["employees"]}


# Reading employees


def test_company_lists_only_its_employees_in_cobee_shape(world, as_client):
    response = as_client(world.a).get(employees_url(world.a))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"employees", "pagination"}
    expected = {str(world.employees[k].id) for k in ("ana", "bea", "carl", "moved_a")}
    assert ids(body) == expected
    ana = next(e for e in body["employees"] if e["id"] == str(world.employees["ana"].id))
    assert ana["companyId"] == str(world.a.id)
    assert ana["grossSalary"] == {"amountInCents": 3_000_000, "currency": "EUR"}
    assert ana["modelId"] == str(world.models["A"].id)
    assert {"legalId", "internalId", "costCenter", "birthDate", "hiringDate", "taxRegime", "state", "metadata"} <= set(
        ana
    )
    assert not any("_" in key for key in ana)
    assert body["pagination"] == {"page": 1, "pageSize": 50, "totalItems": 4, "totalPages": 1}
    assert tenant_or_none() is None


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("email=ANA@a.example", {"ana"}),
        ("legalId=12345678Z", {"moved_a"}),
        ("internalId=X-9", {"carl"}),
        ("state=not-active", {"bea"}),
        ("state=active&internalId=INT-ana", {"ana"}),
        ("email=nobody@a.example", set()),
    ],
)
def test_employee_filters(world, as_client, query, keys):
    response = as_client(world.a).get(f"{employees_url(world.a)}?{query}")
    assert response.status_code == 200
    assert ids(response.json()) == {str(world.employees[k].id) for k in keys}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=sleeping", "state"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("pageSize=201", "pageSize"),
        ("pageSize=-1", "pageSize"),
    ],
)
def test_bad_filters_and_pages_are_400_with_the_field(world, as_client, query, field):
    response = as_client(world.a).get(f"{employees_url(world.a)}?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_pagination_walks_every_employee_once(world, as_client):
    api = as_client(world.a)
    seen = []
    for page in (1, 2, 3):
        body = api.get(f"{employees_url(world.a)}?pageSize=2&page={page}").json()
        seen += [e["id"] for e in body["employees"]]
        assert body["pagination"]["totalItems"] == 4
        assert body["pagination"]["totalPages"] == 2
    assert len(seen) == 4
    assert set(seen) == {str(world.employees[k].id) for k in ("ana", "bea", "carl", "moved_a")}


def test_employee_detail(world, as_client):
    ana = world.employees["ana"]
    response = as_client(world.a).get(f"{employees_url(world.a)}/{ana.id}")
    assert response.status_code == 200
    assert response.json()["email"] == ana.email


@pytest.mark.parametrize("target", ["dan", "eva", "missing", "not-a-uuid"])
def test_another_companys_or_unknown_employee_is_404(world, as_client, target):
    employee_id = {"missing": uuid.uuid4(), "not-a-uuid": "not-a-uuid"}.get(target) or world.employees[target].id
    api = as_client(world.a, world.corp)  # even a corporation-wide caller: dan is in B, not in A
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"{employees_url(world.a)}/{employee_id}", {}, format="json")
        assert response.status_code == 404, method
    with unscoped():
        assert Employee.objects.filter(state="removed").count() == 1


#: Which company URLs each caller reaches (tests/test_serving_surfaces.py asks every way of serving).
COMPANY_REACH = [
    ("a", "a", 200),
    ("a", "b", 403),
    ("a", "solo", 403),
    ("corp", "a", 200),
    ("corp", "b", 200),
    ("corp", "c", 403),
    ("corp", "solo", 403),
    ("solo", "solo", 200),
    ("solo", "a", 403),
]


@pytest.mark.parametrize(("caller", "target", "status"), COMPANY_REACH)
def test_which_company_urls_a_caller_reaches(world, as_client, caller, target, status):
    api = as_client(world.a, world.corp) if caller == "corp" else as_client(getattr(world, caller))
    target_company = getattr(world, target)
    for path in (employees_url(target_company), f"/api/v3/companies/{target_company.id}/benefit-models"):
        assert api.get(path).status_code == status, path


#: Company ids in the path that no caller reaches: malformed (404) or unknown (403). Constants, so that
#: the test ids are the same in every collection (mutation testing runs tests by id).
BAD_COMPANY_IDS = ["not-a-uuid", "3f1c9a52-7d4e-4b8a-9c61-0e2d5f7a8b93", "5E9E9701-9883-447D-9884-46E75993E33B", "%00"]


@pytest.mark.parametrize("company_id", BAD_COMPANY_IDS)
def test_malformed_or_unknown_company_is_refused(world, as_client, company_id):
    response = as_client(world.a).get(f"/api/v3/companies/{company_id}/employees")
    assert response.status_code in (403, 404)


def test_all_employees_is_exactly_the_callers_companies(world, as_client):
    company = as_client(world.a).get("/api/v3/employees").json()["employees"]
    assert {e["companyId"] for e in company} == {str(world.a.id)}
    corporation = as_client(world.a, world.corp).get("/api/v3/employees?pageSize=200").json()["employees"]
    assert {e["companyId"] for e in corporation} == {str(world.a.id), str(world.b.id)}
    assert len(corporation) == 6
    solo = as_client(world.solo).get("/api/v3/employees").json()["employees"]
    assert [e["id"] for e in solo] == [str(world.employees["fer"].id)]


def test_all_employees_filters(world, as_client):
    api = as_client(world.a, world.corp)
    body = api.get(f"/api/v3/employees?legalId=12345678Z&companyId={world.b.id}").json()
    assert ids(body) == {str(world.employees["moved_b"].id)}
    assert api.get("/api/v3/employees?companyId=nope").status_code == 400


# Scopes and credentials


def test_no_token_is_401_with_a_bearer_challenge(world):
    response = APIClient().get(employees_url(world.a))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_from_another_key_is_401(world, cobee_issuer):
    # Same iss, aud and kid as the trusted issuer, but another key pair.
    stranger = TokenIssuer(issuer=cobee_issuer.issuer, audience=cobee_issuer.audience, kid=cobee_issuer.kid)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {stranger.make_token(world.a.id, scopes=READ)}")
    assert api.get(employees_url(world.a)).status_code == 401


#: What each scope set may do (tests/test_serving_surfaces.py asks every way of serving).
SCOPE_MATRIX = [
    ([], "get", 403),
    (["write:employees"], "get", 403),
    (READ, "get", 200),
    (READ, "post", 403),
    (READ, "patch", 403),
    (READ, "delete", 403),
    (["write:employees"], "delete", 204),
]


@pytest.mark.parametrize(("scopes", "method", "status"), SCOPE_MATRIX)
def test_reads_need_read_scope_and_writes_write_scope(world, as_client, scopes, method, status):
    api = as_client(world.a, scopes=scopes)
    ana = world.employees["ana"]
    path = employees_url(world.a) if method in ("get", "post") else f"{employees_url(world.a)}/{ana.id}"
    data = {"email": "new@a.example", "legalId": "87654321X", "name": "New", "surname": "Person"}
    response = getattr(api, method)(path, data if method != "get" else None, format="json")
    assert response.status_code == status
    if status == 403:
        assert "insufficient_scope" in response["WWW-Authenticate"]
    with for_company(world.a.id):
        assert Employee.objects.filter(email="new@a.example").exists() is (status == 201)


# Writing employees


def test_create_employee_in_the_url_company(world, as_client):
    api = as_client(world.a, world.corp)
    data = {
        "email": "zoe@a.example",
        "legalId": "11111111H",
        "name": "Zoe",
        "surname": "Vidal",
        "birthDate": "1990-04-02",
        "hiringDate": "2024-01-15",
        "state": "active",
        "taxRegime": "basque",
        "internalId": "Z-1",
        "costCenter": "CC-IT",
        "grossSalary": {"amountInCents": 4_200_000, "currency": "EUR"},
        "modelId": str(world.models["A"].id),
        "metadata": {"team": "engineering"},
        "companyId": str(world.c.id),  # ignored: the company comes from the URL
    }
    response = api.post(employees_url(world.a), data, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["companyId"] == str(world.a.id)
    assert body["grossSalary"] == {"amountInCents": 4_200_000, "currency": "EUR"}
    with for_company(world.a.id):
        created = Employee.objects.get(id=body["id"])
    assert created.company_id == world.a.id
    assert created.tax_regime == "basque"
    assert created.model_id == world.models["A"].id


BAD_EMPLOYEES = {
    "missing fields": ({}, {"email", "legalId", "name", "surname"}),
    "bad email": ({"email": "nope"}, {"email"}),
    "duplicate email": ({"email": "ANA@a.example"}, {"email"}),
    "duplicate legal id": ({"legalId": "12345678Z"}, {"legalId"}),
    "bad state": ({"state": "retired"}, {"state"}),
    "bad date": ({"birthDate": "1990-13-01"}, {"birthDate"}),
    "negative salary": ({"grossSalary": {"amountInCents": -1}}, {"grossSalary"}),
    "salary not an object": ({"grossSalary": 1000}, {"grossSalary"}),
    "salary in dollars": ({"grossSalary": {"amountInCents": 1, "currency": "USD"}}, {"grossSalary"}),
    "model of a sibling company": ({"modelId": "{model_b}"}, {"modelId"}),
    "model of another corporation": ({"modelId": "{model_c}"}, {"modelId"}),
    "model not a uuid": ({"modelId": "x"}, {"modelId"}),
    "metadata not strings": ({"metadata": {"a": {"b": 1}}}, {"metadata"}),
}


@pytest.mark.parametrize(("override", "fields"), BAD_EMPLOYEES.values(), ids=BAD_EMPLOYEES.keys())
def test_bad_employee_is_400_with_field_errors(world, as_client, override, fields):
    base = {"email": "new@a.example", "legalId": "99999999R", "name": "New", "surname": "Person"}
    data = base if override else {}
    for key, value in override.items():
        if isinstance(value, str):
            value = value.replace("{model_b}", str(world.models["B"].id)).replace(
                "{model_c}", str(world.models["C"].id)
            )
        data = {**data, key: value}
    with for_company(world.a.id):
        before = Employee.objects.count()
    response = as_client(world.a, world.corp).post(employees_url(world.a), data, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    with for_company(world.a.id):
        assert Employee.objects.count() == before


def test_patch_changes_fields_but_never_the_company(world, as_client):
    ana = world.employees["ana"]
    api = as_client(world.a, world.corp)
    response = api.patch(
        f"{employees_url(world.a)}/{ana.id}",
        {"costCenter": "CC-NEW", "companyId": str(world.b.id), "id": str(uuid.uuid4()), "grossSalary": None},
        format="json",
    )
    assert response.status_code == 200, response.json()
    with unscoped():
        ana.refresh_from_db()
    assert (ana.company_id, ana.cost_center, ana.gross_salary_in_cents) == (world.a.id, "CC-NEW", None)
    assert response.json()["grossSalary"] is None


def test_patch_with_bad_input_is_400(world, as_client):
    ana = world.employees["ana"]
    response = as_client(world.a).patch(f"{employees_url(world.a)}/{ana.id}", {"email": "bea@a.example"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["email"]


def test_put_is_not_offered(world, as_client):
    ana = world.employees["ana"]
    assert as_client(world.a).put(f"{employees_url(world.a)}/{ana.id}", {}, format="json").status_code == 405


def test_delete_marks_the_employee_removed(world, as_client):
    ana = world.employees["ana"]
    response = as_client(world.a).delete(f"{employees_url(world.a)}/{ana.id}")
    assert response.status_code == 204
    with for_company(world.a.id):
        ana.refresh_from_db()
        assert ana.state == "removed"
        assert ana.consumptions.count() == 2


# Benefit models


def test_benefit_models_with_their_bags(world, as_client):
    body = as_client(world.a).get(f"/api/v3/companies/{world.a.id}/benefit-models").json()
    (model,) = body["benefitModels"]
    assert model["id"] == str(world.models["A"].id)
    assert model["companyId"] == str(world.a.id)
    (bag,) = model["benefitBagConfigs"]
    assert bag["allowedFor"] == ["meal-benefit"]
    assert bag["limitAmount"] == {"amountInCents": 22_000, "currency": "EUR"}
    detail = as_client(world.a).get(f"/api/v3/companies/{world.a.id}/benefit-models/{model['id']}")
    assert detail.json() == model


def test_another_companys_benefit_model_is_404(world, as_client):
    api = as_client(world.a, world.corp)
    assert api.get(f"/api/v3/companies/{world.a.id}/benefit-models/{world.models['B'].id}").status_code == 404
    assert api.get(f"/api/v3/companies/{world.a.id}/benefit-models/{world.models['C'].id}").status_code == 404


# Consumptions


def consumptions_url(corp, payroll="2026-10"):
    return f"/api/v3/corporations/{corp.id}/consumptions?payroll={payroll}"


def test_consumptions_grouped_by_company(world, as_client):
    response = as_client(world.a, world.corp).get(consumptions_url(world.corp))
    assert response.status_code == 200
    body = response.json()
    assert body["corporationId"] == str(world.corp.id)
    assert body["payroll"] == "2026-10"
    groups = {group["companyName"]: group for group in body["companies"]}
    assert set(groups) == {"A", "B"}
    assert groups["A"]["total"] == {"amountInCents": 3000, "currency": "EUR"}
    assert groups["B"]["total"] == {"amountInCents": 7000, "currency": "EUR"}
    moved = [c for group in body["companies"] for c in group["consumptions"] if c["legalId"] == "12345678Z"]
    assert len(moved) == 2  # once per company
    assert moved[0]["amount"] == {"amountInCents": 2000, "currency": "EUR"}


def test_consumptions_as_csv(world, as_client):
    response = as_client(world.a, world.corp).get(consumptions_url(world.corp), HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    assert {row["companyId"] for row in rows} == {str(world.a.id), str(world.b.id)}
    assert sum(int(row["amountInCents"]) for row in rows) == 10_000


@pytest.mark.parametrize(
    ("query", "field"), [("", "payroll"), ("?payroll=2026-13", "payroll"), ("?payroll=202610", "payroll")]
)
def test_consumptions_need_a_valid_payroll(world, as_client, query, field):
    for accept in ("application/json", "text/csv"):
        response = as_client(world.a, world.corp).get(
            f"/api/v3/corporations/{world.corp.id}/consumptions{query}", HTTP_ACCEPT=accept
        )
        assert response.status_code == 400
        assert list(response.json()) == [field]


@pytest.mark.parametrize(("caller", "status"), [("company", 403), ("other-corp", 403), ("corp", 200)])
def test_consumptions_need_the_corporation(world, as_client, caller, status):
    api = {
        "company": lambda: as_client(world.a),
        "other-corp": lambda: as_client(world.c, world.other_corp),
        "corp": lambda: as_client(world.b, world.corp),
    }[caller]()
    assert api.get(consumptions_url(world.corp)).status_code == status


def test_csv_cells_cannot_become_formulas():
    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert safe_cell("@SUM") == "'@SUM"
    assert safe_cell("Ana") == "Ana"
    assert safe_cell(None) == ""


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_duplicate_that_slips_past_the_checks_is_still_a_400(world, as_client, monkeypatch, method):
    """Two concurrent requests can both pass the uniqueness checks; the database constraint decides."""
    from testproject.api import serializers

    monkeypatch.setattr(serializers.EmployeeSerializer, "validate_email", lambda self, value: value)
    monkeypatch.setattr("cobee_django.guards.validate_company_unique", lambda *args, **kwargs: None)
    api = as_client(world.a)
    if method == "post":
        data = {"email": world.employees["ana"].email, "legalId": "55555555K", "name": "Twin", "surname": "Ana"}
        response = api.post(employees_url(world.a), data, format="json")
    else:
        path = f"{employees_url(world.a)}/{world.employees['bea'].id}"
        response = api.patch(path, {"email": world.employees["ana"].email}, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["An employee with this email or legal id already exists."]}
    with for_company(world.a.id):
        assert Employee.objects.filter(email=world.employees["ana"].email).count() == 1
