"""cobee_django.testing for users' own suites: the API client, the fixtures, tenant binding, trust."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from django.test import Client, override_settings

from cobee_django import state
from cobee_django.exceptions import CobeeDjangoError, NoTenantBound
from cobee_django.models import Company
from cobee_django.testing import (
    JWKSServer,
    TenantAPIClient,
    TokenIssuer,
    configured_issuer,
    installed_key_set,
    make_principal,
    tenant,
    trust,
)
from tests.testapp.models import Employee

pytestmark = pytest.mark.urls("tests.testapp.apiviews")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def staff(tenants):
    """Two employees in company a, one in b, one in c."""
    with state.unscoped():
        for company, email in [(tenants.a, "ann@a"), (tenants.a, "bob@a"), (tenants.b, "cy@b"), (tenants.c, "di@c")]:
            Employee.objects.create(company_id=company, email=email)
    return tenants


def emails(response):
    assert response.status_code == 200, response.content
    return [row["email"] for row in response.json()]


# --- the API client ---------------------------------------------------------------------------------


def test_three_lines_call_a_protected_endpoint_as_a_company(cobee_api_client, staff):
    client = cobee_api_client(company=staff.a, scopes=["read:employees"])
    response = client.get(f"/api/v3/companies/{staff.a}/employees")
    assert response.status_code == 200
    assert [row["email"] for row in response.json()] == ["ann@a", "bob@a"]


def test_client_class_needs_no_fixture_and_leaves_nothing_installed(staff):
    client = TenantAPIClient.for_company(staff.b, scopes=["read:employees"])
    assert emails(client.get(f"/api/v3/companies/{staff.b}/employees")) == ["cy@b"]
    assert installed_key_set(client.issuer.issuer) is None
    # Outside the client's requests, its tokens are not trusted: the app would fetch real keys.
    assert client.issuer.issuer == "http://127.0.0.1:8000/"


def test_token_is_real_and_checked(cobee_api_client, staff):
    client = cobee_api_client(company=staff.a, scopes=["read:employees"], client_id="partner-7")
    principal_claims = client.issuer.claims(staff.a)
    assert client.token.count(".") == 2 and principal_claims["iss"] == "http://127.0.0.1:8000/"
    # An expired token from the same helper is refused by the real verifier.
    expired = cobee_api_client(company=staff.a, scopes=["read:employees"], exp=1)
    response = expired.get(f"/api/v3/companies/{staff.a}/employees")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_scopes_and_companies_are_enforced(cobee_api_client, staff):
    reader = cobee_api_client(company=staff.a, scopes=["read:employees"])
    response = reader.post(f"/api/v3/companies/{staff.a}/employees", {"email": "new@a"}, format="json")
    assert response.status_code == 403
    assert 'scope="write:employees"' in response["WWW-Authenticate"]
    assert reader.get(f"/api/v3/companies/{staff.b}/employees").status_code == 403
    writer = cobee_api_client(company=staff.a, scopes=["write:employees"])
    response = writer.post(f"/api/v3/companies/{staff.a}/employees", {"email": "new@a"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["company"] == str(staff.a)


def test_corporation_client_reaches_every_company_of_its_corporation(cobee_api_client, staff):
    client = cobee_api_client(corporation=staff.corp, scopes=["read:employees"])
    assert emails(client.get(f"/api/v3/companies/{staff.a}/employees")) == ["ann@a", "bob@a"]
    assert emails(client.get(f"/api/v3/companies/{staff.b}/employees")) == ["cy@b"]
    assert client.get(f"/api/v3/companies/{staff.c}/employees").status_code == 403


def test_for_corporation_names_a_company_of_it(staff):
    client = TenantAPIClient.for_corporation(staff.corp, scopes=["read:employees"])
    claims = client.issuer.claims(None)
    metadata_claim = next(name for name in claims if name.startswith("https://"))
    import json

    from cobee_django.jose import b64url_decode

    payload = json.loads(b64url_decode(client.token.split(".")[1]))
    # "First" is the database's order of primary keys (MariaDB's native UUID sorts unlike Python's).
    first = Company.objects.filter(corporation_id=staff.corp).order_by("pk").values_list("pk", flat=True)[0]
    assert first in {staff.a, staff.b}
    assert payload[metadata_claim] == {"companyId": str(first), "corporationId": str(staff.corp)}
    assert emails(client.get(f"/api/v3/companies/{staff.b}/employees")) == ["cy@b"]


def test_corporation_without_companies_needs_a_company_id(db):
    with pytest.raises(CobeeDjangoError, match="pass company_id"):
        TenantAPIClient.for_corporation(uuid.uuid4())
    with pytest.raises(CobeeDjangoError):
        TenantAPIClient().authenticate_as()


def test_logout_forgets_the_token(cobee_api_client, staff):
    client = cobee_api_client(company=staff.a, scopes=["read:employees"])
    client.logout()
    assert client.token is None
    assert client.get(f"/api/v3/companies/{staff.a}/employees").status_code == 401


# --- the other fixtures -------------------------------------------------------------------------------


def test_cobee_token_works_with_django_test_client(cobee_token, staff):
    token = cobee_token(company=staff.c, scopes=["read:employees"])
    response = Client().get(f"/api/v3/companies/{staff.c}/employees", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert emails(response) == ["di@c"]


def test_cobee_issuer_is_trusted_for_the_test_only(cobee_issuer):
    assert installed_key_set(cobee_issuer.issuer) == cobee_issuer.jwks()
    assert cobee_issuer is configured_issuer()


def test_after_cobee_issuer_nothing_is_installed():
    assert installed_key_set("http://127.0.0.1:8000/") is None


def test_keys_can_travel_over_http(cobee_jwks_server, cobee_api_client, staff, settings):
    assert settings.COBEE_DJANGO["JWKS_URL"] == cobee_jwks_server.jwks_url
    client = cobee_api_client(company=staff.a, scopes=["read:employees"])
    assert emails(client.get(f"/api/v3/companies/{staff.a}/employees")) == ["ann@a", "bob@a"]
    assert cobee_jwks_server.fetches() >= 1
    assert installed_key_set(client.issuer.issuer) is None


def test_cobee_tenant_binds_and_unbinds(cobee_tenant, staff):
    with cobee_tenant(company=staff.a):
        assert Employee.objects.count() == 2
    with pytest.raises(NoTenantBound):
        Employee.objects.count()


# --- tenant(), make_principal(), trust(), configured_issuer() ----------------------------------------------


def test_tenant_forms(staff):
    with tenant(staff.a) as bound:
        assert bound.company_ids == {staff.a} and bound.corporation_id is None
    with tenant(companies=[staff.b, str(staff.c)]):
        assert sorted(Employee.objects.values_list("email", flat=True)) == ["cy@b", "di@c"]
    with tenant(corporation=staff.corp) as bound:
        assert bound.company_ids == {staff.a, staff.b} and bound.corporation_id == staff.corp
        assert Employee.objects.count() == 3
    with tenant(staff.a, corporation=staff.corp) as bound:
        assert bound.company_ids == {staff.a} and bound.corporation_id == staff.corp
    assert state.tenant_or_none() is None
    with pytest.raises(CobeeDjangoError):
        tenant().__enter__()


def test_tenant_unbinds_on_exceptions(staff):
    with pytest.raises(RuntimeError), tenant(staff.a):
        raise RuntimeError("boom")
    assert state.tenant_or_none() is None


def test_make_principal():
    company, corporation = uuid.uuid4(), uuid.uuid4()
    principal = make_principal(str(company), corporation, ["read:x"], client_id="c9")
    assert (principal.company_id, principal.corporation_id, principal.scopes) == (company, corporation, {"read:x"})
    assert principal.client_id == "c9" and principal.is_authenticated


def test_trust_nests_and_restores(rsa_key):
    one = TokenIssuer(issuer="https://tenant.example/", audience="https://api.example", key=rsa_key)
    two = TokenIssuer(issuer="https://tenant.example/", audience="https://api.example", kid="other", key=rsa_key)
    with trust(one):
        with trust(two):
            assert installed_key_set(one.issuer) == two.jwks()
        assert installed_key_set(one.issuer) == one.jwks()
        with trust(one):
            assert installed_key_set(one.issuer) == one.jwks()
        assert installed_key_set(one.issuer) == one.jwks()
    assert installed_key_set(one.issuer) is None


def test_configured_issuer_follows_settings():
    default = configured_issuer()
    assert (default.issuer, default.audience) == ("http://127.0.0.1:8000/", "https://api.cobee.io")
    settings = {"ISSUERS": [{"ISSUER": "https://b.example/", "AUDIENCE": ["z", "a"]}], "METADATA_CLAIM": "https://m"}
    with override_settings(COBEE_DJANGO=settings):
        other = configured_issuer()
        assert (other.issuer, other.audience, other.metadata_claim) == ("https://b.example/", "a", "https://m")
        assert other.key is default.key  # one key per process: RSA generation is the slow part
    assert configured_issuer() is default


def test_jwks_server_is_exported():
    assert JWKSServer.__module__ == "cobee_django.testing.jwks_server"


# --- the plugin in projects that do not use Django ------------------------------------------------------


@pytest.mark.slow  # pytest in a subprocess
def test_plugin_is_inert_without_django(tmp_path):
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            def test_plain():
                assert True

            def test_fixture_needs_django(cobee_issuer):
                pass
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "cobee_django.testing.pytest_plugin"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 passed, 1 error" in result.stdout, result.stdout + result.stderr
    assert "need a configured Django project" in result.stdout


def test_entry_point_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    plugins = config["project"]["entry-points"]["pytest11"]
    assert plugins == {"cobee_django.testing.pytest_plugin": "cobee_django.testing.pytest_plugin"}


# --- a user's project, from the outside --------------------------------------------------------------

USER_PROJECT = {
    "shop/__init__.py": "",
    "shop/settings.py": """
SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "cobee_django"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "cobee_django.middleware.TenantMiddleware",
]
ROOT_URLCONF = "shop.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
COBEE_DJANGO = {"ISSUER": "https://shop.eu.auth0.com/", "AUDIENCE": "https://api.shop.example"}
REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["cobee_django.authentication.JWTAuthentication"]}
""",
    "shop/urls.py": """
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django.permissions import CanAccessCompany, HasScopes


class Orders(APIView):
    permission_classes = [CanAccessCompany, HasScopes]
    required_scopes = ["read:orders"]

    def get(self, request, companyId):
        return Response({"company": companyId, "client": request.user.client_id})


urlpatterns = [path("companies/<str:companyId>/orders", Orders.as_view())]
""",
    "pytest.ini": "[pytest]\nDJANGO_SETTINGS_MODULE = shop.settings\n",
    "test_orders.py": """
import uuid

COMPANY = uuid.uuid4()


def test_orders_as_company_x(cobee_api_client):
    client = cobee_api_client(company=COMPANY, scopes=["read:orders"])
    response = client.get(f"/companies/{COMPANY}/orders")
    assert response.status_code == 200


def test_orders_of_another_company(cobee_api_client):
    client = cobee_api_client(company=COMPANY, scopes=["read:orders"])
    assert client.get(f"/companies/{uuid.uuid4()}/orders").status_code == 403
""",
}


@pytest.mark.slow  # pytest and Django set up in a subprocess
def test_a_users_project_tests_its_endpoint_in_three_lines(tmp_path):
    for name, text in USER_PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "cobee_django.testing.pytest_plugin"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "2 passed" in result.stdout, result.stdout + result.stderr


def test_the_key_set_helpers_moved_to_testing_and_stay_importable_from_jwks():
    from cobee_django import jwks, testing

    assert testing.install_key_set is jwks.pin_key_set
    assert testing.uninstall_key_set is jwks.unpin_key_set
    assert testing.installed_key_set is jwks.pinned_key_set
    assert not hasattr(jwks.IssuerKeys, "fetches")


# Cache isolation, and the fixtures' errors in their own words


def test_isolated_cache_hides_what_another_block_wrote_and_deletes_nothing():
    from django.core.cache import caches

    from cobee_django.testing import isolated_cache

    caches["default"].set("outside", 1)
    with isolated_cache():
        assert caches["default"].get("outside") is None  # not seen ...
        caches["default"].set("throttle-count", 5)
    with isolated_cache():
        assert caches["default"].get("throttle-count") is None  # ... and nothing leaks to the next test
    assert caches["default"].get("outside") == 1  # ... and nothing was deleted
    caches["default"].delete("outside")


def test_the_token_fixtures_isolate_the_cache(cobee_issuer, settings):
    from django.conf import settings as live

    assert all(str(config.get("KEY_PREFIX", "")).startswith("cobee-test-") for config in live.CACHES.values())


def test_an_empty_corporation_names_the_fixtures_own_keyword(cobee_api_client, db):
    from cobee_django.models import Corporation

    empty = Corporation.objects.create(name="Nobody yet")
    with pytest.raises(CobeeDjangoError, match=r"pass company= as well"):
        cobee_api_client(corporation=empty.pk)
    with pytest.raises(CobeeDjangoError, match=r"pass company_id= as well"):
        TenantAPIClient().authenticate_as(corporation_id=empty.pk)
