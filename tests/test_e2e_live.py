"""End to end over real HTTP: the dev issuer mints tokens, the API verifies them against the key set it
fetches from that same server, and every endpoint answers exactly the caller's companies.

The server is Django's live server thread on 127.0.0.1 with an ephemeral port; COBEE_DJANGO's
ISSUER is pointed at it, so JWTAuthentication fetches the JWKS over HTTP like it would from Auth0.
"""

from __future__ import annotations

import csv
import io

import pytest
import requests
from pytest_django.live_server_helper import LiveServer

from cobee_django.devissuer.models import DevClient
from testproject.api import seed

pytestmark = pytest.mark.django_db(transaction=True)

AUDIENCE = "https://api.cobee.io"
READ_WRITE = "read:employees write:employees"


@pytest.fixture(scope="module")
def live(django_db_setup, tmp_path_factory):
    """One live server (and one dev-issuer key) for the module.

    Stopping a server per test would race with its request threads, which close their database
    connections after the client already has its answer.
    """
    server = LiveServer("127.0.0.1")
    yield server, tmp_path_factory.mktemp("devissuer")
    # Stop serving, but keep an in-memory SQLite connection shareable: a request thread still holding
    # an idle keep-alive connection closes its database connections whenever its client goes away.
    server.thread.terminate()


@pytest.fixture
def server(live, transactional_db, settings):
    """The live server's base URL, trusted as COBEE_DJANGO's issuer and served by the dev issuer."""
    live_server, key_dir = live
    url = f"{live_server.url}/"
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ISSUER": url, "JWKS_URL": None}
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "ENABLED": True, "KEY_DIR": key_dir}
    settings.DEBUG = True  # as in development (pytest-django turns DEBUG off; the issuer then refuses)
    return url


@pytest.fixture
def data(server):
    return seed.seed()


def company_id(data, slug):
    return data.companies_by_slug[slug].id


def corporation_id(data, slug):
    return data.corporations_by_slug[slug].id


@pytest.fixture
def client_for(data):
    def make(company_slug, corporation_slug=None, scopes=READ_WRITE):
        corporation = corporation_id(data, corporation_slug) if corporation_slug else None
        return DevClient.objects.create_client(
            company_id=company_id(data, company_slug), corporation_id=corporation, scopes=scopes
        )

    return make


def auth0_token(server, client, secret, **extra):
    response = requests.post(
        f"{server}oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
            "audience": AUDIENCE,
            **extra,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def cobee_token(server, client, secret):
    response = requests.post(
        f"{server}api/v3/oauth/token", json={"clientId": client.client_id, "clientSecret": secret}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["accessToken"]


class Api:
    """Calls to the API as one caller; each call on its own connection, closed when answered."""

    def __init__(self, server, token=None):
        self.server = server
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __call__(self, method, path, headers=None, **kwargs):
        return requests.request(
            method, f"{self.server}api/v3/{path}", headers={**self.headers, **(headers or {})}, timeout=10, **kwargs
        )


def test_a_company_client_reaches_exactly_its_company(server, data, client_for):
    client, secret = client_for("norte-distribucion")
    api = Api(server, auth0_token(server, client, secret))
    own = company_id(data, "norte-distribucion")
    sibling = company_id(data, "norte-logistica")

    listed = api("GET", f"companies/{own}/employees")
    assert listed.status_code == 200
    employees = listed.json()["employees"]
    assert len(employees) == 6
    assert {e["companyId"] for e in employees} == {str(own)}

    everyone = api("GET", "employees").json()["employees"]
    assert {e["id"] for e in everyone} == {e["id"] for e in employees}

    active = api("GET", f"companies/{own}/employees", params={"state": "active"}).json()["employees"]
    assert active
    assert {e["state"] for e in active} == {"active"}
    assert api("GET", f"companies/{own}/employees", params={"state": "asleep"}).status_code == 400

    first = employees[0]
    detail = api("GET", f"companies/{own}/employees/{first['id']}")
    assert detail.json() == first

    models = api("GET", f"companies/{own}/benefit-models").json()["benefitModels"]
    assert {m["name"] for m in models} == {"Standard", "Premium"}
    assert api("GET", f"companies/{own}/benefit-models/{models[0]['id']}").json() == models[0]

    created = api(
        "POST",
        f"companies/{own}/employees",
        json={
            "email": "nuevo@nortedistribucion.example",
            "legalId": "00000001R",
            "name": "Nuevo",
            "surname": "Empleado",
            "grossSalary": {"amountInCents": 2_500_000, "currency": "EUR"},
        },
    )
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    bad = api(
        "POST", f"companies/{own}/employees", json={"email": "not-an-email", "grossSalary": {"amountInCents": "x"}}
    )
    assert bad.status_code == 400
    assert {"email", "legalId", "name", "surname", "grossSalary"} <= set(bad.json())

    patched = api(
        "PATCH", f"companies/{own}/employees/{new_id}", json={"costCenter": "CC-IT", "companyId": str(sibling)}
    )
    assert patched.status_code == 200
    assert patched.json()["companyId"] == str(own)
    assert api("DELETE", f"companies/{own}/employees/{new_id}").status_code == 204
    assert api("GET", f"companies/{own}/employees/{new_id}").json()["state"] == "removed"

    # Another company, even of the same corporation: its URLs are refused, its ids are not found.
    assert api("GET", f"companies/{sibling}/employees").status_code == 403
    assert api("POST", f"companies/{sibling}/employees", json={}).status_code == 403
    sibling_employee = seed.seed_id("norte-logistica", "employee", "0")
    for method in ("GET", "PATCH", "DELETE"):
        assert api(method, f"companies/{own}/employees/{sibling_employee}", json={}).status_code == 404
    corp = corporation_id(data, "grupo-norte")
    assert api("GET", f"corporations/{corp}/consumptions", params={"payroll": "2026-10"}).status_code == 403


def test_a_corporation_client_reaches_every_company_of_its_corporation(server, data, client_for):
    client, secret = client_for("norte-distribucion", "grupo-norte", scopes="read:employees")
    api = Api(server, cobee_token(server, client, secret))
    corp = corporation_id(data, "grupo-norte")
    norte = {company_id(data, s) for s in ("norte-distribucion", "norte-logistica", "norte-retail")}

    everyone = api("GET", "employees", params={"pageSize": 200}).json()
    assert {e["companyId"] for e in everyone["employees"]} == {str(c) for c in norte}
    assert everyone["pagination"]["totalItems"] == 15
    for company in norte:
        assert api("GET", f"companies/{company}/employees").status_code == 200
    assert api("GET", f"companies/{company_id(data, 'iberia-cloud')}/employees").status_code == 403
    assert api("GET", f"companies/{company_id(data, 'panaderia-sol')}/employees").status_code == 403

    report = api("GET", f"corporations/{corp}/consumptions", params={"payroll": "2026-10"})
    assert report.status_code == 200
    groups = report.json()["companies"]
    assert {g["companyId"] for g in groups} == {str(c) for c in norte}
    moved = [c for g in groups for c in g["consumptions"] if c["legalId"] == seed.dni(48_123_456)]
    assert {c["email"].split("@")[1] for c in moved} == {"nortedistribucion.example", "nortelogistica.example"}

    as_csv = api(
        "GET", f"corporations/{corp}/consumptions", params={"payroll": "2026-10"}, headers={"Accept": "text/csv"}
    )
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == sum(len(g["consumptions"]) for g in groups)
    assert api("GET", f"corporations/{corp}/consumptions").status_code == 400

    other_corp = corporation_id(data, "iberia-tech")
    assert api("GET", f"corporations/{other_corp}/consumptions", params={"payroll": "2026-10"}).status_code == 403
    # Read-only: writes are refused for lack of scope.
    refused = api(
        "PATCH", f"companies/{company_id(data, 'norte-retail')}/employees/{everyone['employees'][0]['id']}", json={}
    )
    assert refused.status_code == 403
    assert "insufficient_scope" in refused.headers["WWW-Authenticate"]


def test_without_a_valid_token_every_endpoint_is_401(server, data, client_for):
    own = company_id(data, "panaderia-sol")
    paths = [
        f"companies/{own}/employees",
        f"companies/{own}/employees/{seed.seed_id('panaderia-sol', 'employee', '0')}",
        f"companies/{own}/benefit-models",
        f"corporations/{corporation_id(data, 'grupo-norte')}/consumptions?payroll=2026-10",
        "employees",
    ]
    client, secret = client_for("panaderia-sol")
    good = auth0_token(server, client, secret)
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for path in paths:
        missing = Api(server)("GET", path)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        invalid = Api(server, tampered)("GET", path)
        assert invalid.status_code == 401
        assert 'error="invalid_token"' in invalid.headers["WWW-Authenticate"]
        assert Api(server, good)("GET", path).status_code in (200, 403)


def test_the_auth0_sdk_gets_a_token_from_the_dev_issuer(server, data, client_for):
    from auth0.authentication import GetToken
    from auth0.authentication.exceptions import Auth0Error

    client, secret = client_for("iberia-cloud")
    host = server.removeprefix("http://").rstrip("/")
    sdk = GetToken(host, client.client_id, client_secret=secret, protocol="http", telemetry=False)
    answer = sdk.client_credentials(AUDIENCE)
    assert answer["token_type"] == "Bearer"
    assert isinstance(answer["expires_in"], int)
    own = company_id(data, "iberia-cloud")
    listed = Api(server, answer["access_token"])("GET", f"companies/{own}/employees")
    assert listed.status_code == 200
    assert {e["companyId"] for e in listed.json()["employees"]} == {str(own)}

    with pytest.raises(Auth0Error) as refused:
        sdk.client_credentials("https://another-api.example")
    assert refused.value.error_code == "invalid_request"
    wrong = GetToken(host, client.client_id, client_secret="wrong", protocol="http", telemetry=False)
    with pytest.raises(Auth0Error) as denied:
        wrong.client_credentials(AUDIENCE)
    assert denied.value.status_code == 401
    assert denied.value.error_code == "invalid_client"


def test_discovery_points_at_the_server(server):
    config = requests.get(f"{server}.well-known/openid-configuration", timeout=10).json()
    assert config["issuer"] == server
    keys = requests.get(config["jwks_uri"], timeout=10).json()["keys"]
    assert keys
    assert all("d" not in key for key in keys)
    assert config["token_endpoint"] == f"{server}oauth/token"
