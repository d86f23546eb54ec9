"""Staff sign-in through OIDC (cobee_django.staff.oidc), against a small provider served on 127.0.0.1.

The provider below answers the three calls the backend makes (token, key set, userinfo) over real
HTTP; each test says what it should answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory, override_settings
from django.urls import reverse

from cobee_django import staff
from cobee_django.models import Company, Corporation, StaffGrant, StaffIdentity, _GrantSource
from cobee_django.staff import oidc
from tests.testapp.admin_world import grant, make_staff, make_world

pytestmark = pytest.mark.django_db

CLIENT_ID = "admin-rp"
METADATA = "https://auth.cobee.io/metadata"
STAFF = "https://auth.cobee.io/staff"


class Provider:
    """What the provider will answer; tests change these fields."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.issuer = f"{base}/"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.claims: dict = {}
        self.userinfo: dict | None = None
        self.sign_with = self.key
        self.token_status = 200
        self.nonce = "the-nonce"

    def id_token_claims(self) -> dict:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "auth0|alice", "iat": now, "exp": now + 300}
        base["nonce"] = self.nonce
        base.update(self.claims)
        return {k: v for k, v in base.items() if v is not None}

    def id_token(self) -> str:
        return jwt.encode(self.id_token_claims(), self.sign_with, algorithm="RS256", headers={"kid": self.kid})

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def userinfo_answer(self) -> dict:
        if self.userinfo is not None:
            return self.userinfo
        return {k: v for k, v in self.id_token_claims().items() if k not in {"iss", "aud", "exp", "iat", "nonce"}}


@pytest.fixture(scope="module")
def server():
    state: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            provider = state["provider"]
            if self.path == "/jwks":
                self.answer(200, provider.jwks())
            elif self.path == "/userinfo" and self.headers.get("Authorization") == "Bearer at-1":
                self.answer(200, provider.userinfo_answer())
            else:
                self.answer(401, {"error": "invalid_token"})

        def do_POST(self):
            provider = state["provider"]
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path != "/token" or provider.token_status != 200:
                self.answer(provider.token_status, {"error": "server_error"})
                return
            self.answer(200, {"id_token": provider.id_token(), "access_token": "at-1", "token_type": "Bearer"})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state["base"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def provider(server, settings):
    provider = Provider(server["base"])
    server["provider"] = provider
    with override_settings(
        OIDC_RP_CLIENT_ID=CLIENT_ID,
        OIDC_RP_CLIENT_SECRET="rp-secret",
        OIDC_RP_SIGN_ALGO="RS256",
        OIDC_OP_AUTHORIZATION_ENDPOINT=f"{provider.base}/authorize",
        OIDC_OP_TOKEN_ENDPOINT=f"{provider.base}/token",
        OIDC_OP_USER_ENDPOINT=f"{provider.base}/userinfo",
        OIDC_OP_JWKS_ENDPOINT=f"{provider.base}/jwks",
        OIDC_TIMEOUT=5,
        COBEE_DJANGO={**settings.COBEE_DJANGO, "ADMIN_OIDC_ISSUER": provider.issuer},
    ):
        yield provider


@pytest.fixture
def world():
    return make_world()


def callback_request():
    request = RequestFactory().get("/oidc/callback/", {"code": "c-1", "state": "s-1"})
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def sign_in(provider):
    """Run the backend as the callback view does; return (user or None, messages shown)."""
    request = callback_request()
    user = oidc.StaffOIDCBackend().authenticate(request, nonce=provider.nonce, code_verifier=None)
    return user, [str(m) for m in get_messages(request)]


def metadata(company=None, corporation=None):
    value = {}
    if company is not None:
        value["companyId"] = str(company.id if hasattr(company, "id") else company)
    if corporation is not None:
        value["corporationId"] = str(corporation.id if hasattr(corporation, "id") else corporation)
    return {METADATA: value}


def grants_of(user):
    return {(str(g.company_id or g.corporation_id), g.source) for g in StaffGrant.objects.filter(user=user)}


# Matching people: by subject, never by email.


def test_first_sign_in_creates_a_staff_user_with_its_grants(provider, world):
    provider.claims = {**metadata(world.acme_north, world.acme), "email": "a@x.test", "email_verified": True}
    user, shown = sign_in(provider)
    assert user is not None, shown
    assert user.is_staff and not user.is_superuser
    assert not user.has_usable_password()
    assert user.email == "a@x.test"
    identity = StaffIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (provider.issuer, "auth0|alice")
    assert identity.last_sign_in is not None
    assert grants_of(user) == {(str(world.acme_north.id), "oidc"), (str(world.acme.id), "oidc")}


def test_the_subject_finds_the_user_again_whatever_the_email(provider, world):
    provider.claims = {"email": "old@x.test", "email_verified": True}
    first, _ = sign_in(provider)
    provider.claims = {"email": "new@x.test", "email_verified": True}
    second, _ = sign_in(provider)
    assert second.pk == first.pk
    assert second.email == "new@x.test"
    assert get_user_model().objects.count() == 1


def test_an_email_never_matches_an_existing_user(provider, world):
    admin = make_staff("root", superuser=True)
    admin.email = "root@x.test"
    admin.save()
    provider.claims = {"sub": "attacker", "email": "root@x.test", "email_verified": True}
    user, _ = sign_in(provider)
    assert user.pk != admin.pk
    assert not user.is_superuser


def test_an_unverified_email_is_not_recorded(provider, world):
    provider.claims = {"email": "ceo@x.test", "email_verified": False}
    user, _ = sign_in(provider)
    assert user.email == ""


def test_same_subject_at_another_issuer_is_another_person(provider, world, settings):
    user, _ = sign_in(provider)
    StaffIdentity.objects.filter(user=user).update(issuer="https://other.example/")
    again, _ = sign_in(provider)
    assert again.pk != user.pk


# Grants follow the claims at each sign-in; admin grants stay.


def test_oidc_grants_are_replaced_and_admin_grants_kept(provider, world):
    provider.claims = metadata(world.acme_north)
    user, _ = sign_in(provider)
    grant(user, world.lonely)  # made by a superuser in the admin
    provider.claims = metadata(world.globex_one)
    sign_in(provider)
    assert grants_of(user) == {(str(world.globex_one.id), "oidc"), (str(world.lonely.id), "admin")}
    provider.claims = {}
    sign_in(provider)
    assert grants_of(user) == {(str(world.lonely.id), "admin")}


def test_a_claim_already_granted_by_hand_stays_an_admin_grant(provider, world):
    provider.claims = {}
    user, _ = sign_in(provider)
    grant(user, world.acme)
    provider.claims = metadata(corporation=world.acme)
    sign_in(provider)
    assert grants_of(user) == {(str(world.acme.id), "admin")}


def test_unknown_ids_in_claims_are_added_to_the_registry(provider, world):
    company, corporation = uuid.uuid4(), uuid.uuid4()
    provider.claims = metadata(company, corporation)
    user, _ = sign_in(provider)
    assert Company.objects.filter(id=company).exists()
    assert Corporation.objects.filter(id=corporation).exists()
    assert grants_of(user) == {(str(company), "oidc"), (str(corporation), "oidc")}


def test_staff_claim_reaches_every_company_until_it_goes(provider, world):
    provider.claims = {STAFF: True}
    user, _ = sign_in(provider)
    assert staff.reaches_every_company(user)
    assert not user.is_superuser
    provider.claims = {STAFF: False}
    sign_in(provider)
    assert not staff.reaches_every_company(user)


def test_staff_claim_name_is_configurable(provider, world, settings):
    with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, "ADMIN_STAFF_CLAIM": "https://x.test/staff"}):
        provider.claims = {STAFF: True, "https://x.test/staff": True}
        user, _ = sign_in(provider)
        assert StaffIdentity.objects.get(user=user).all_companies
        provider.claims = {STAFF: True}
        sign_in(provider)
        assert not StaffIdentity.objects.get(user=user).all_companies


def test_groups_from_the_setting_are_given(provider, world, settings):
    operators = Group.objects.create(name="Operators")
    with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, "ADMIN_OIDC_GROUPS": ["Operators", "Missing"]}):
        user, _ = sign_in(provider)
    assert list(user.groups.all()) == [operators]


# Refusals: nothing changes, and the person is told why in words that echo no claim.

MALFORMED = [
    {METADATA: "00000000-0000-0000-0000-000000000011"},
    {METADATA: ["x"]},
    {METADATA: {"companyId": 11}},
    {METADATA: {"companyId": "not-a-uuid"}},
    {METADATA: {"companyId": "{00000000-0000-0000-0000-000000000011}"}},
    {METADATA: {"companyId": "urn:uuid:00000000-0000-0000-0000-000000000011"}},
    {METADATA: {"companyId": None}},
    {METADATA: {"companyId": "00000000-0000-0000-0000-000000000011", "corporationId": ""}},
    {STAFF: "true"},
    {STAFF: 1},
    {STAFF: {"value": True}},
]


@pytest.mark.parametrize("claims", MALFORMED)
def test_malformed_claims_refuse_sign_in_and_change_nothing(provider, world, claims):
    provider.claims = metadata(world.acme_north)
    user, _ = sign_in(provider)
    before = grants_of(user)
    provider.claims = claims
    refused, shown = sign_in(provider)
    assert refused is None
    assert shown == [oidc.REFUSED_CLAIMS]
    assert grants_of(user) == before


def test_malformed_claims_create_no_user(provider, world):
    provider.claims = {"sub": "new-person", METADATA: {"companyId": "nope"}}
    assert sign_in(provider)[0] is None
    assert not get_user_model().objects.exists()


def other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "change",
    [
        {"claims": {"iss": "https://evil.example/"}},
        {"claims": {"aud": "another-client"}},
        {"claims": {"aud": ["another-client", CLIENT_ID]}},  # several audiences need azp = us
        {"claims": {"aud": ["another-client", CLIENT_ID], "azp": "another-client"}},
        {"claims": {"exp": None}},
        {"claims": {"exp": int(time.time()) - 3600}},
        {"claims": {"sub": None}},
        {"claims": {"sub": ""}},
        {"claims": {"sub": 42}},
        {"claims": {"nonce": "another-nonce"}},
        {"userinfo": {"sub": "auth0|mallory"}},
        {"userinfo": {}},
        {"sign_with": "other"},
        {"token_status": 500},
        {"token_status": 400},
    ],
)
def test_unverifiable_answers_refuse_sign_in(provider, world, change):
    for name, value in change.items():
        if name == "claims":
            provider.claims = value
        elif value == "other":
            provider.sign_with = other_key()
        else:
            setattr(provider, name, value)
    user, shown = sign_in(provider)
    assert user is None
    assert shown == [oidc.REFUSED_TOKEN]
    assert not get_user_model().objects.exists()


def test_azp_naming_us_allows_several_audiences(provider, world):
    provider.claims = {"aud": ["another-client", CLIENT_ID], "azp": CLIENT_ID}
    assert sign_in(provider)[0] is not None


def test_unreachable_provider_refuses_without_error(provider, world, settings):
    with override_settings(OIDC_OP_TOKEN_ENDPOINT="http://127.0.0.1:9/token", OIDC_TIMEOUT=1):
        user, shown = sign_in(provider)
    assert user is None
    assert shown == [oidc.REFUSED_TOKEN]


def test_disabled_user_is_refused(provider, world):
    user, _ = sign_in(provider)
    user.is_active = False
    user.save()
    again, shown = sign_in(provider)
    assert again is None
    assert shown == [oidc.REFUSED_INACTIVE]


def test_username_is_stable_and_opaque():
    name = oidc._username_for("https://idp/", "auth0|alice")
    assert name == oidc._username_for("https://idp/", "auth0|alice")
    assert name != oidc._username_for("https://idp/", "auth0|bob")
    assert "alice" not in name and len(name) <= 150


def test_issuer_defaults_to_the_first_trusted_issuer(settings):
    raw = {k: v for k, v in settings.COBEE_DJANGO.items() if k != "ADMIN_OIDC_ISSUER"}
    with override_settings(COBEE_DJANGO=raw):
        assert oidc._expected_issuer() == raw["ISSUER"]


# Through the callback view: the session, the redirect and the login page message are real.


def start_flow(client, provider):
    session = client.session
    session["oidc_states"] = {"s-1": {"nonce": provider.nonce, "code_verifier": None}}
    session.save()


def test_callback_signs_in_and_lands_in_the_admin(client, provider, world):
    provider.claims = metadata(corporation=world.acme)
    start_flow(client, provider)
    response = client.get(reverse("oidc_authentication_callback"), {"code": "c-1", "state": "s-1"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    page = client.get("/admin/").content.decode()
    assert 'id="cobee-tenant-switcher"' in page
    assert "Acme (all companies)" in page


def test_refused_callback_shows_the_reason_on_the_login_page(client, provider, world):
    provider.claims = {METADATA: {"companyId": 7}}
    start_flow(client, provider)
    response = client.get(reverse("oidc_authentication_callback"), {"code": "c-1", "state": "s-1"}, follow=True)
    assert response.redirect_chain[-1][0] == "/admin/login/"
    page = response.content.decode()
    assert oidc.REFUSED_CLAIMS.replace("'", "&#x27;") in page
    assert "_auth_user_id" not in client.session


def test_login_page_offers_single_sign_on_and_keeps_the_password_form(client):
    page = client.get("/admin/login/").content.decode()
    assert 'id="cobee-sso-link"' in page
    assert reverse("oidc_authentication_init") in page
    assert 'name="password"' in page


def test_local_password_sign_in_still_works(client, world):
    user = get_user_model().objects.create_user("local", password="a-long-local-password", is_staff=True)
    grant(user, world.acme_north)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "local", "password": "a-long-local-password", "next": "/admin/"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_grants_source_is_oidc_for_claims(provider, world):
    provider.claims = metadata(world.lonely)
    user, _ = sign_in(provider)
    assert StaffGrant.objects.get(user=user).source == _GrantSource.OIDC


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ADMIN_OIDC_ISSUER": "http://idp.example/"}, "cobee_django.E003"),
        ({"ADMIN_OIDC_ISSUER": 3}, "cobee_django.E003"),
        ({"ADMIN_OIDC_GROUPS": "Operators"}, "cobee_django.E006"),
        ({"ADMIN_OIDC_GROUPS": [""]}, "cobee_django.E006"),
    ],
)
def test_admin_oidc_settings_are_checked(settings, overrides, expected):
    from django.core.checks import run_checks

    with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, **overrides}):
        assert expected in {m.id for m in run_checks()}


# Timeouts: a provider that stops answering refuses the sign-in instead of holding the worker.


@pytest.fixture
def silent_provider():
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_the_timeout_defaults_to_ours_and_follows_the_setting(settings):
    del settings.OIDC_TIMEOUT
    assert oidc.StaffOIDCBackend.get_settings("OIDC_TIMEOUT", None) == oidc.DEFAULT_OIDC_TIMEOUT
    settings.OIDC_TIMEOUT = None
    assert oidc.StaffOIDCBackend.get_settings("OIDC_TIMEOUT", None) == oidc.DEFAULT_OIDC_TIMEOUT
    settings.OIDC_TIMEOUT = 3
    assert oidc.StaffOIDCBackend.get_settings("OIDC_TIMEOUT", None) == 3


@pytest.mark.parametrize("endpoint", ["OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT", "OIDC_OP_USER_ENDPOINT"])
def test_a_silent_provider_refuses_the_sign_in_without_oidc_timeout_set(
    provider, world, settings, silent_provider, monkeypatch, endpoint
):
    monkeypatch.setattr(oidc, "DEFAULT_OIDC_TIMEOUT", 0.2, raising=False)
    del settings.OIDC_TIMEOUT
    setattr(settings, endpoint, f"{silent_provider}/silent")
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(sign_in(provider)), daemon=True)
    worker.start()
    worker.join(30)  # a liveness bound, not a measurement: without a timeout the sign-in never ends
    assert outcome, "the sign-in is still waiting for the provider"
    user, shown = outcome[0]
    assert user is None
    assert shown == [oidc.REFUSED_TOKEN]
