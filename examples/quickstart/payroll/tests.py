"""Isolation, scopes and 401/403, with real tokens signed by a test issuer your app trusts during the test."""

from cobee_django.testing import tenant

from .models import Department, Employee

READ = ["read:employees"]
READ_WRITE = ["read:employees", "write:employees"]


def departments_url(company):
    return f"/api/companies/{company.pk}/departments/"


def employees_url(company):
    return f"/api/companies/{company.pk}/employees/"


def test_a_company_sees_only_its_own_rows(cobee_api_client, company, other_company):
    with tenant(company.pk):
        Department.objects.create(name="Sales")  # the bound company is assigned
    with tenant(other_company.pk):
        Department.objects.create(name="Secret lab")
    client = cobee_api_client(company=company.pk, scopes=READ)
    response = client.get(departments_url(company))
    assert response.status_code == 200
    assert [d["name"] for d in response.json()] == ["Sales"]


def test_another_companys_url_is_refused(cobee_api_client, company, other_company):
    client = cobee_api_client(company=company.pk, scopes=READ)
    assert client.get(departments_url(other_company)).status_code == 403


def test_another_companys_row_is_not_found(cobee_api_client, company, other_company):
    with tenant(other_company.pk):
        theirs = Employee.objects.create(email="eve@globex.example")
    client = cobee_api_client(company=company.pk, scopes=READ)
    assert client.get(f"{employees_url(company)}{theirs.pk}/").status_code == 404


def test_create_takes_the_company_from_the_url(cobee_api_client, company, other_company):
    client = cobee_api_client(company=company.pk, scopes=READ_WRITE)
    response = client.post(departments_url(company), {"name": "Sales", "company": str(other_company.pk)}, format="json")
    assert response.status_code == 201
    assert response.json()["company"] == str(company.pk)


def test_another_companys_department_looks_like_an_unknown_one(cobee_api_client, company, other_company):
    with tenant(other_company.pk):
        theirs = Department.objects.create(name="Secret lab")
    client = cobee_api_client(company=company.pk, scopes=READ_WRITE)
    url = employees_url(company)
    foreign = client.post(url, {"email": "ann@acme.example", "department": theirs.pk}, format="json")
    unknown = client.post(url, {"email": "ann@acme.example", "department": theirs.pk + 1000}, format="json")
    assert foreign.status_code == unknown.status_code == 400
    assert foreign.json()["department"] == [
        message.replace(str(theirs.pk + 1000), str(theirs.pk)) for message in unknown.json()["department"]
    ]


def test_a_corporation_token_reaches_every_company_of_it(cobee_api_client, company, sister_company, other_company):
    client = cobee_api_client(corporation=company.corporation_id, scopes=READ)
    assert client.get(departments_url(company)).status_code == 200
    assert client.get(departments_url(sister_company)).status_code == 200
    assert client.get(departments_url(other_company)).status_code == 403


def test_scopes_are_checked_per_method(cobee_api_client, company):
    reader = cobee_api_client(company=company.pk, scopes=READ)
    assert reader.get(departments_url(company)).status_code == 200
    assert reader.post(departments_url(company), {"name": "Sales"}, format="json").status_code == 403
    nobody = cobee_api_client(company=company.pk, scopes=[])
    assert nobody.get(departments_url(company)).status_code == 403


def test_no_token_or_a_bad_token_is_401(client, company):
    assert client.get(departments_url(company)).status_code == 401
    bad = client.get(departments_url(company), HTTP_AUTHORIZATION="Bearer not-a-token")
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")
