"""The dev issuer's OpenID provider and the admin's OIDC sign-in, end to end over HTTP.

The browser side runs in Django's test client; the back channel (token and userinfo calls made by
the sign-in backend) goes over real HTTP to the live server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.test import Client

from cobee_django import staff
from cobee_django.devissuer import keys
from cobee_django.devissuer.people import DevPerson
from cobee_django.models import Company, Corporation, StaffGrant, StaffIdentity
from tests.testapp.admin_world import make_world, point_oidc_at

pytestmark = pytest.mark.django_db(transaction=True)

METADATA = "https://auth.cobee.io/metadata"


@pytest.fixture
def provider(live_server, settings):
    """Point the project's issuer and its admin's OIDC settings at the live server."""
    point_oidc_at(settings, live_server.url)
    return live_server.url


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def olivia(world):
    return DevPerson.objects.create(
        subject="dev|olivia", name="Olivia Operator", email="olivia@acme.test", corporation_id=world.acme.id
    )


def token_post(form):
    """POST /oauth/token as a relying party does: a urlencoded form."""
    return Client().post("/oauth/token", urlencode(form), content_type="application/x-www-form-urlencoded")


def start(client):
    """Begin the sign-in at the admin's side; return the provider's authorize URL (path and query)."""
    response = client.get("/oidc/authenticate/", {"next": "/admin/"})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    return f"{location.path}?{location.query}", parse_qs(location.query)


def sign_in(client, person):
    authorize, params = start(client)
    page = client.get(authorize)
    assert page.status_code == 200
    assert person.name in page.content.decode()
    back = client.post(authorize, {**{k: v[0] for k, v in params.items()}, "person": person.subject})
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


def test_discovery_names_the_code_flow(provider, client):
    document = client.get("/.well-known/openid-configuration").json()
    assert document["authorization_endpoint"] == f"{provider}/authorize"
    assert document["userinfo_endpoint"] == f"{provider}/userinfo"
    assert "authorization_code" in document["grant_types_supported"]
    assert "code" in document["response_types_supported"]
    assert "client_credentials" in document["grant_types_supported"]


def test_operator_signs_in_and_manages_their_corporation(provider, client, olivia, world):
    response = sign_in(client, olivia)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    identity = StaffIdentity.objects.get(subject="dev|olivia")
    assert identity.issuer == f"{provider}/"
    assert identity.user.email == "olivia@acme.test"
    assert set(StaffGrant.objects.filter(user=identity.user).values_list("corporation_id", flat=True)) == {
        world.acme.id
    }
    page = client.get("/admin/").content.decode()
    assert "Acme (all companies)" in page
    assert f"company:{world.globex_one.id}" not in page


def test_cobee_staff_reach_every_company(provider, client, world):
    person = DevPerson.objects.create(subject="dev|sam", name="Sam Staff", cobee_staff=True)
    sign_in(client, person)
    user = StaffIdentity.objects.get(subject="dev|sam").user
    assert staff.reaches_every_company(user)


def test_id_token_is_rs256_signed_by_the_dev_issuer(provider, client, olivia, settings):
    authorize, params = start(client)
    back = client.post(authorize, {**{k: v[0] for k, v in params.items()}, "person": olivia.subject})
    code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    session_state = client.session["oidc_states"][params["state"][0]]
    answer = token_post(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"][0],
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "client_secret": settings.OIDC_RP_CLIENT_SECRET,
            "code_verifier": session_state["code_verifier"],
        },
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["token_type"] == "Bearer"
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256"
    key = jwt.PyJWK(keys.get_issuer().jwks()["keys"][0])
    claims = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience=settings.OIDC_RP_CLIENT_ID)
    assert claims["iss"] == f"{provider}/"
    assert claims["sub"] == "dev|olivia"
    assert claims["nonce"] == session_state["nonce"]
    assert claims[METADATA] == {"corporationId": str(olivia.corporation_id)}
    info = Client().get("/userinfo", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.json()["sub"] == "dev|olivia"
    # The code is good once.
    again = token_post(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"][0],
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "client_secret": settings.OIDC_RP_CLIENT_SECRET,
            "code_verifier": session_state["code_verifier"],
        },
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def code_for(client, person):
    authorize, params = start(client)
    back = client.post(authorize, {**{k: v[0] for k, v in params.items()}, "person": person.subject})
    code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    verifier = client.session["oidc_states"][params["state"][0]]["code_verifier"]
    return code, params["redirect_uri"][0], verifier


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"code": "made-up"}, 400, "invalid_grant"),
        ({"redirect_uri": "http://testserver/elsewhere/"}, 400, "invalid_grant"),
        ({"code_verifier": "x" * 64}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
def test_token_endpoint_refusals(provider, client, olivia, settings, change, status, error):
    code, redirect_uri, verifier = code_for(client, olivia)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "client_secret": settings.OIDC_RP_CLIENT_SECRET,
        "code_verifier": verifier,
        **change,
    }
    answer = token_post(form)
    assert answer.status_code == status
    assert answer.json()["error"] == error


def test_pkce_verifier_is_checked_with_s256(provider, client, olivia, settings):
    code, redirect_uri, verifier = code_for(client, olivia)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge  # the admin sent S256 (OIDC_USE_PKCE)
    wrong = token_post(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "client_secret": settings.OIDC_RP_CLIENT_SECRET,
        },
    )
    assert wrong.status_code == 400


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/oidc/callback/",
        "http://testserver/admin/",
        "http://testserver/oidc/callback/?x=1",
        "javascript:alert(1)",
        "",
    ],
)
def test_authorize_never_redirects_to_a_foreign_uri(provider, client, settings, redirect_uri):
    response = client.get(
        "/authorize",
        {
            "response_type": "code",
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": "s",
        },
    )
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_authorize_refuses_an_unknown_client(provider, client):
    response = client.get(
        "/authorize",
        {
            "response_type": "code",
            "client_id": "x",
            "redirect_uri": "http://testserver/oidc/callback/",
            "scope": "openid",
        },
    )
    assert response.status_code == 400


def test_authorize_sends_errors_back_to_the_client(provider, client, settings):
    response = client.get(
        "/authorize",
        {
            "response_type": "code",
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "redirect_uri": "http://testserver/oidc/callback/",
            "scope": "email",
            "state": "s-9",
        },
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["invalid_scope"]
    assert query["state"] == ["s-9"]


def test_userinfo_needs_a_valid_access_token(provider, client):
    assert client.get("/userinfo").status_code == 401
    assert client.get("/userinfo", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_demo_people_sign_in_as_operators(provider, client):
    from testproject.api import seed
    from testproject.api.demo_people import OPERATORS_GROUP, ensure_demo_people

    summary = seed.SeedSummary()
    for corp in seed.CORPORATIONS:
        summary.corporations_by_slug[corp.slug] = Corporation.objects.create(name=corp.name)
    for spec in seed.COMPANIES:
        corporation = summary.corporations_by_slug.get(spec.corporation) if spec.corporation else None
        summary.companies_by_slug[spec.slug] = Company.objects.create(name=spec.name, corporation=corporation)
    people = ensure_demo_people(summary)
    assert len(ensure_demo_people(summary)) == len(people) == DevPerson.objects.count()  # idempotent
    first_corp = seed.CORPORATIONS[0]
    operator = DevPerson.objects.get(subject=f"dev|operator-{first_corp.slug}")
    sign_in(client, operator)
    user = StaffIdentity.objects.get(subject=operator.subject).user
    assert user.groups.filter(name=OPERATORS_GROUP).exists()
    assert user.has_perm("api.change_employee")
    page = client.get("/admin/").content.decode()
    assert f"{first_corp.name} (all companies)" in page
