"""The development token issuer: keys, discovery, both token endpoints, clients, the DEBUG guard."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from cobee_django.devissuer import checks, conf, keys
from cobee_django.devissuer.models import DevClient
from cobee_django.models import Company, Corporation
from cobee_django.testing import install_key_set, uninstall_key_set

ROOT = Path(__file__).resolve().parent.parent
COMPANY = uuid.UUID("5e9e9701-9883-447d-9884-46e75993e33b")
CORPORATION = uuid.UUID("0b6f1f3e-43f5-4c1e-9a55-2f1e6b7d1c11")
AUDIENCE = "https://api.cobee.io"


@pytest.fixture(autouse=True)
def dev_issuer_settings(settings, tmp_path):
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "KEY_DIR": tmp_path, "ENABLED": True}
    settings.DEBUG = True  # as in development (pytest-django turns DEBUG off; the issuer then refuses)
    return settings.COBEE_DEV_ISSUER


@pytest.fixture
def dev_client(db):
    return DevClient.objects.create_client(company_id=COMPANY, corporation_id=CORPORATION, name="test")


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def post_form(client, path, data, **extra):
    return client.post(path, data, content_type="application/x-www-form-urlencoded", **extra)


def form(**params) -> str:
    from urllib.parse import urlencode

    return urlencode(params, doseq=True)


# Keys


def test_key_is_created_private_and_reused(tmp_path):
    path = tmp_path / "var" / "key.pem"
    first = keys.load_or_create_key(path)
    assert first.startswith(b"-----BEGIN")
    assert path.stat().st_mode & 0o077 == 0
    assert keys.load_or_create_key(path) == first
    # The folder the issuer made ignores itself in git: the private key cannot be committed by accident.
    assert sorted(p.name for p in path.parent.iterdir()) == [".gitignore", "key.pem"]
    assert (path.parent / ".gitignore").read_text().splitlines()[-1] == "*"


def test_an_existing_folder_is_left_as_it_is(tmp_path):
    keys.load_or_create_key(tmp_path / "key.pem")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]


def test_threads_racing_on_first_use_agree_on_one_key(tmp_path):
    path = tmp_path / "key.pem"
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def load():
        barrier.wait()
        results.append(keys.load_or_create_key(path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]


@pytest.mark.slow  # Django set up in several processes
def test_processes_started_together_share_one_key(tmp_path):
    path = tmp_path / "key.pem"
    code = (
        "import hashlib, sys, django; django.setup();"
        "from pathlib import Path; from cobee_django.devissuer.keys import load_or_create_key;"
        "print(hashlib.sha256(load_or_create_key(Path(sys.argv[1]))).hexdigest())"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings", "COBEE_DEMO_VAR_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    digests = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert all(proc.returncode == 0 for proc in procs)
    assert digests == {hashlib.sha256(path.read_bytes()).hexdigest()}


def test_the_issuer_keeps_its_key_across_restarts(dev_issuer_settings):
    token_key = keys.get_issuer().jwks()
    keys._issuers.clear()  # what a restart does to the process
    assert keys.get_issuer().jwks() == token_key


# Discovery


def test_jwks_publishes_the_public_key_only(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "RSA"
    assert key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert response.json() == keys.get_issuer().jwks()


def test_openid_configuration_names_issuer_keys_and_token_endpoint(client, settings):
    body = client.get("/.well-known/openid-configuration").json()
    issuer = settings.COBEE_DJANGO["ISSUER"]
    assert body["issuer"] == issuer
    assert body["jwks_uri"] == f"{issuer}.well-known/jwks.json"
    assert body["token_endpoint"] == f"{issuer}oauth/token"
    assert body["response_types_supported"] == ["code"]  # no implicit flow is offered
    assert "client_credentials" in body["grant_types_supported"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/.well-known/jwks.json"),
        ("get", "/.well-known/openid-configuration"),
        ("post", "/oauth/token"),
        ("post", "/api/v3/oauth/token"),
    ],
)
def test_every_endpoint_is_gone_when_the_issuer_is_off(client, settings, method, path):
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "ENABLED": False}
    assert getattr(client, method)(path).status_code == 404


# Auth0's /oauth/token


def test_form_request_gets_an_auth0_shaped_token(client, dev_client, settings):
    model, secret = dev_client
    response = post_form(
        client,
        "/oauth/token",
        form(grant_type="client_credentials", client_id=model.client_id, client_secret=secret, audience=AUDIENCE),
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert type(body["expires_in"]) is int
    assert body["scope"] == "read:employees write:employees"
    claims = claims_of(body["access_token"])
    assert set(claims) == {"iss", "sub", "aud", "iat", "exp", "azp", "gty", "scope", "https://auth.cobee.io/metadata"}
    assert claims["iss"] == settings.COBEE_DJANGO["ISSUER"]
    assert claims["sub"] == f"{model.client_id}@clients"
    assert claims["azp"] == model.client_id
    assert claims["aud"] == AUDIENCE
    assert claims["gty"] == "client-credentials"
    assert claims["exp"] - claims["iat"] == 86400
    assert claims["https://auth.cobee.io/metadata"] == {"companyId": str(COMPANY), "corporationId": str(CORPORATION)}


def test_json_request_ignores_unknown_and_null_parameters(client, dev_client):
    model, secret = dev_client
    response = client.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": model.client_id,
            "client_secret": secret,
            "audience": None,
            "scope": None,
            "organization": None,
            "extra": [1, {"nested": True}],
        },
        content_type="application/json",
    )
    assert response.status_code == 200
    assert claims_of(response.json()["access_token"])["aud"] == AUDIENCE


def test_company_client_token_has_no_corporation(client, db):
    model, secret = DevClient.objects.create_client(company_id=COMPANY)
    body = client.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "client_id": model.client_id, "client_secret": secret},
        content_type="application/json",
    ).json()
    assert claims_of(body["access_token"])["https://auth.cobee.io/metadata"] == {"companyId": str(COMPANY)}


def test_a_narrower_scope_can_be_requested(client, dev_client):
    model, secret = dev_client
    body = post_form(
        client,
        "/oauth/token",
        form(grant_type="client_credentials", client_id=model.client_id, client_secret=secret, scope="read:employees"),
    ).json()
    assert body["scope"] == "read:employees"
    assert claims_of(body["access_token"])["scope"] == "read:employees"


def test_http_basic_client_authentication(client, dev_client):
    model, secret = dev_client
    basic = base64.b64encode(f"{model.client_id}:{secret}".encode()).decode()
    response = post_form(
        client, "/oauth/token", form(grant_type="client_credentials"), HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 200


def test_token_endpoint_is_post_only(client):
    assert client.get("/oauth/token").status_code == 405


BAD_REQUESTS = {
    "missing grant_type": ("form", {"client_id": "{id}", "client_secret": "{secret}"}, 400, "invalid_request"),
    "password grant": (
        "form",
        {"grant_type": "password", "client_id": "{id}", "client_secret": "{secret}"},
        400,
        "unsupported_grant_type",
    ),
    "wrong secret": (
        "form",
        {"grant_type": "client_credentials", "client_id": "{id}", "client_secret": "nope"},
        401,
        "invalid_client",
    ),
    "unknown client": (
        "form",
        {"grant_type": "client_credentials", "client_id": "someone", "client_secret": "{secret}"},
        401,
        "invalid_client",
    ),
    "missing secret": ("form", {"grant_type": "client_credentials", "client_id": "{id}"}, 401, "invalid_client"),
    "missing client": ("form", {"grant_type": "client_credentials"}, 401, "invalid_client"),
    "foreign audience": (
        "form",
        {
            "grant_type": "client_credentials",
            "client_id": "{id}",
            "client_secret": "{secret}",
            "audience": "https://other.example",
        },
        400,
        "invalid_request",
    ),
    "scope not granted": (
        "form",
        {
            "grant_type": "client_credentials",
            "client_id": "{id}",
            "client_secret": "{secret}",
            "scope": "read:employees admin",
        },
        400,
        "invalid_scope",
    ),
    "repeated parameter": (
        "raw-form",
        "grant_type=client_credentials&client_id={id}&client_id={id}&client_secret={secret}",
        400,
        "invalid_request",
    ),
    "malformed json": ("raw-json", '{"grant_type": "client_credentials", ', 400, "invalid_request"),
    "json array": ("raw-json", '["client_credentials"]', 400, "invalid_request"),
    "json nested too deeply": ("raw-json", "[" * 100_000 + "]" * 100_000, 400, "invalid_request"),
    "json duplicate key": (
        "raw-json",
        '{"grant_type": "client_credentials", "client_id": "{id}", "client_id": "x", "client_secret": "{secret}"}',
        400,
        "invalid_request",
    ),
    "json NaN": ("raw-json", '{"grant_type": "client_credentials", "client_id": NaN}', 400, "invalid_request"),
    "json number as client id": (
        "raw-json",
        '{"grant_type": "client_credentials", "client_id": 12, "client_secret": "{secret}"}',
        400,
        "invalid_request",
    ),
    "text body": ("raw-text", "grant_type=client_credentials", 400, "invalid_request"),
    "not utf-8 json": ("raw-json", b'{"grant_type": "\xff"}', 400, "invalid_request"),
}


@pytest.mark.parametrize(("kind", "data", "status", "error"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_token_requests_answer_rfc6749_errors(client, dev_client, kind, data, status, error):
    model, secret = dev_client

    def fill(value):
        if isinstance(value, bytes):
            return value
        return value.replace("{id}", model.client_id).replace("{secret}", secret)

    if kind == "form":
        response = post_form(client, "/oauth/token", form(**{k: fill(v) for k, v in data.items()}))
    else:
        content_type = {"raw-form": "application/x-www-form-urlencoded", "raw-json": "application/json"}.get(
            kind, "text/plain"
        )
        response = client.post("/oauth/token", fill(data), content_type=content_type)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    assert response["Cache-Control"] == "no-store"
    assert secret not in response.content.decode()
    assert DevClient.objects.count() == 1


def test_wrong_basic_credentials_get_a_basic_challenge(client, dev_client):
    model, _ = dev_client
    basic = base64.b64encode(f"{model.client_id}:wrong".encode()).decode()
    response = post_form(
        client, "/oauth/token", form(grant_type="client_credentials"), HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_two_client_authentication_methods_are_refused(client, dev_client):
    model, secret = dev_client
    basic = base64.b64encode(f"{model.client_id}:{secret}".encode()).decode()
    response = post_form(
        client,
        "/oauth/token",
        form(grant_type="client_credentials", client_secret=secret),
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# Cobee's /api/v3/oauth/token


def test_cobee_shaped_token_endpoint(client, dev_client):
    model, secret = dev_client
    response = client.post(
        "/api/v3/oauth/token", {"clientId": model.client_id, "clientSecret": secret}, content_type="application/json"
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"accessToken", "tokenType", "expiresIn"}
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 86400
    assert claims_of(body["accessToken"])["azp"] == model.client_id


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"clientId": "{id}", "clientSecret": "wrong"}, 401),
        ({"clientId": "{id}"}, 401),
        ({"clientId": "{id}", "clientSecret": 5}, 400),
    ],
)
def test_cobee_token_endpoint_refuses_bad_credentials(client, dev_client, payload, status):
    model, _ = dev_client
    payload = {k: v.replace("{id}", model.client_id) if isinstance(v, str) else v for k, v in payload.items()}
    response = client.post("/api/v3/oauth/token", payload, content_type="application/json")
    assert response.status_code == status
    assert "accessToken" not in response.json()


# Clients


def test_secrets_are_stored_hashed(dev_client):
    model, secret = dev_client
    model.refresh_from_db()
    assert secret not in model.secret_hash
    algorithm, iterations, salt, digest = model.secret_hash.split("$")
    assert (algorithm, iterations) == ("devclient_pbkdf2_sha256", "1000")
    assert salt
    assert digest
    assert model.check_secret(secret)
    assert not model.check_secret(secret + "x")
    assert DevClient.objects.authenticate(model.client_id, secret) == model
    assert DevClient.objects.authenticate("unknown", secret) is None


def test_a_secret_hashed_with_the_default_password_hasher_still_matches(dev_client):
    from django.contrib.auth.hashers import make_password

    model, _ = dev_client
    model.secret_hash = make_password("an older secret")
    model.save()
    assert DevClient.objects.authenticate(model.client_id, "an older secret") == model
    assert DevClient.objects.authenticate(model.client_id, "another") is None


def test_create_dev_client_prints_its_secret_once_as_json(db):
    out = io.StringIO()
    call_command(
        "create_dev_client",
        "--company",
        str(COMPANY),
        "--corporation",
        str(CORPORATION),
        "--scope",
        "read:employees",
        "--json",
        stdout=out,
    )
    last = json.loads(out.getvalue().strip().splitlines()[-1])
    assert set(last) == {"client_id", "client_secret"}
    model = DevClient.objects.get(client_id=last["client_id"])
    assert (model.company_id, model.corporation_id, model.scopes) == (COMPANY, CORPORATION, "read:employees")
    assert model.check_secret(last["client_secret"])
    assert last["client_secret"] not in model.secret_hash


def test_create_dev_client_default_scopes_and_plain_output(db):
    out = io.StringIO()
    call_command("create_dev_client", "--company", str(COMPANY), stdout=out)
    model = DevClient.objects.get()
    assert model.corporation_id is None
    assert model.scopes == "read:employees write:employees"
    assert f"client_id:     {model.client_id}" in out.getvalue()


@pytest.mark.parametrize("args", [["--company", "not-a-uuid"], ["--company", str(COMPANY), "--corporation", "x"]])
def test_create_dev_client_refuses_bad_ids(db, args):
    with pytest.raises(CommandError, match="not a UUID"):
        call_command("create_dev_client", *args)
    assert not DevClient.objects.exists()


# Never with DEBUG off


@pytest.mark.parametrize(
    ("debug", "enabled", "allowed", "refused"),
    [
        (True, True, False, False),
        (False, True, False, True),
        (False, True, True, False),
        (False, False, False, False),
    ],
)
def test_system_check_refuses_the_issuer_without_debug(settings, debug, enabled, allowed, refused):
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "ENABLED": enabled, "ALLOW_WITHOUT_DEBUG": allowed}
    with override_settings(DEBUG=debug):
        errors = checks.check_debug()
    assert [e.id for e in errors] == (["cobee_devissuer.E001"] if refused else [])


def _endpoint_requests(client, dev_client) -> dict:
    """One request per dev issuer endpoint (by URL name), each one the endpoint answers when it runs."""
    model, secret = dev_client
    credentials = form(grant_type="client_credentials", client_id=model.client_id, client_secret=secret)
    code_grant = form(grant_type="authorization_code", client_id="admin", client_secret="s", code="c")
    return {
        "jwks": lambda: client.get("/.well-known/jwks.json"),
        "openid-configuration": lambda: client.get("/.well-known/openid-configuration"),
        "token": lambda: post_form(client, "/oauth/token", credentials),
        "token (authorization code)": lambda: post_form(client, "/oauth/token", code_grant),
        "cobee-token": lambda: client.post(
            "/api/v3/oauth/token",
            {"clientId": model.client_id, "clientSecret": secret},
            content_type="application/json",
        ),
        "authorize": lambda: client.get("/authorize", {"client_id": "admin", "response_type": "code"}),
        "authorize (POST)": lambda: post_form(client, "/authorize", form(client_id="admin", person="dev|x")),
        "userinfo": lambda: client.get("/userinfo", HTTP_AUTHORIZATION="Bearer unknown"),
    }


def test_every_endpoint_is_in_the_refusal_test(client, dev_client):
    from cobee_django.devissuer.urls import urlpatterns

    names = {name.split(" (")[0] for name in _endpoint_requests(client, dev_client)}
    assert names == {pattern.name for pattern in urlpatterns}


@pytest.mark.parametrize(
    "endpoint",
    [
        "jwks",
        "openid-configuration",
        "token",
        "token (authorization code)",
        "cobee-token",
        "authorize",
        "authorize (POST)",
        "userinfo",
    ],
)
@pytest.mark.parametrize("turn_off", ["override_settings", "settings"])
def test_every_endpoint_refuses_once_debug_is_off_after_start_up(client, dev_client, settings, endpoint, turn_off):
    send = _endpoint_requests(client, dev_client)[endpoint]
    answered = send()
    assert answered.status_code != 404, answered.content  # it runs with DEBUG on
    if turn_off == "settings":
        settings.DEBUG = False
        refused = send()
    else:
        with override_settings(DEBUG=False):
            refused = send()
    # Checked on this request, not at start-up: nothing answers, no token is minted.
    assert refused.status_code == 404
    assert b"access_token" not in refused.content and b"accessToken" not in refused.content
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "ALLOW_WITHOUT_DEBUG": True}
    with override_settings(DEBUG=False):
        assert send().status_code == answered.status_code  # explicitly allowed: it answers again


def test_issue_token_itself_refuses_without_debug(dev_client):
    from django.http import Http404

    from cobee_django.devissuer.tokens import issue_token

    model, _ = dev_client
    with override_settings(DEBUG=False), pytest.raises(Http404):
        issue_token(model, audience=AUDIENCE, scopes=["read:employees"])


@pytest.mark.slow  # the test project started in a subprocess
@pytest.mark.parametrize(
    ("env", "starts"),
    [
        ({"DJANGO_DEBUG": "0"}, False),
        ({"DJANGO_DEBUG": "0", "COBEE_DEV_ISSUER_WITHOUT_DEBUG": "1"}, True),
        ({"DJANGO_DEBUG": "0", "COBEE_DJANGO_JWKS_URL": "https://tenant.example/.well-known/jwks.json"}, True),
    ],
)
def test_the_project_does_not_start_with_the_issuer_and_debug_off(tmp_path, env, starts):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("COBEE_", "DJANGO_"))}
    environ.update(env, COBEE_DEMO_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="testproject.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode == 0) is starts, result.stderr
    if not starts:
        assert "cobee_devissuer.E001" in result.stderr
        assert "DEBUG is off" in result.stderr
        # One line, not a traceback.
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0, result.stderr


# manage.py dev_token: a ready token for a company or a corporation


@pytest.fixture
def trusted(settings):
    """The API trusts the dev issuer's key (no HTTP: the key set is installed)."""
    issuer = settings.COBEE_DJANGO["ISSUER"]
    install_key_set(issuer, keys.get_issuer().jwks())
    yield
    uninstall_key_set(issuer)


def dev_token(*args: str, debug: bool = True) -> str:
    """``manage.py dev_token`` as run in development (pytest-django turns DEBUG off)."""
    out = io.StringIO()
    with override_settings(DEBUG=debug):
        call_command("dev_token", *args, stdout=out)
    return out.getvalue().strip()


def test_dev_token_prints_only_a_token_for_the_company_and_scopes(db, settings):
    token = dev_token("--company", str(COMPANY), "--scope", "read:employees", "--scope", "read:x write:y")
    claims = claims_of(token)
    assert claims["https://auth.cobee.io/metadata"] == {"companyId": str(COMPANY)}
    assert claims["scope"] == "read:employees read:x write:y"
    assert claims["iss"] == settings.COBEE_DJANGO["ISSUER"]
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 86400


def test_a_dev_token_is_accepted_by_the_api_and_scoped_to_its_company(db, client, trusted):
    company = Company.objects.create(name="Mine")
    other = Company.objects.create(name="Theirs")
    token = dev_token("--company", str(company.pk), "--scope", "read:employees")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get(f"/api/v3/companies/{company.pk}/employees", **auth).status_code == 200
    assert client.get(f"/api/v3/companies/{other.pk}/employees", **auth).status_code == 403


def test_a_corporation_token_names_the_company_the_user_means(db):
    corporation = Corporation.objects.create(name="Group")
    a = Company.objects.create(name="a", corporation=corporation)
    out, err = io.StringIO(), io.StringIO()
    with override_settings(DEBUG=True):
        call_command("dev_token", "--corporation", str(corporation.pk), stdout=out, stderr=err)
    # The only company is taken, and the command says which (stdout keeps only the token).
    assert claims_of(out.getvalue().strip())["https://auth.cobee.io/metadata"] == {
        "companyId": str(a.pk),
        "corporationId": str(corporation.pk),
    }
    assert str(a.pk) in err.getvalue() and "a (" in err.getvalue()
    b = Company.objects.create(name="b", corporation=corporation)
    # Two companies: the user says which, and it must be one of the corporation's.
    with pytest.raises(CommandError, match="pass --company") as caught:
        dev_token("--corporation", str(corporation.pk))
    assert str(a.pk) in str(caught.value) and str(b.pk) in str(caught.value)
    claims = claims_of(dev_token("--corporation", str(corporation.pk), "--company", str(b.pk)))
    assert claims["https://auth.cobee.io/metadata"]["companyId"] == str(b.pk)
    lone = Company.objects.create(name="lone")
    with pytest.raises(CommandError, match="not a company of corporation"):
        dev_token("--corporation", str(corporation.pk), "--company", str(lone.pk))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Pass --company"),
        (["--company", "nope"], "not a UUID"),
        (["--corporation", str(CORPORATION)], "No company of corporation"),
        (["--company", str(COMPANY), "--audience", "https://elsewhere.example"], "not an audience"),
        (["--company", str(COMPANY), "--lifetime", "0"], "positive"),
    ],
)
def test_dev_token_refuses_what_it_cannot_issue(db, args, message):
    with pytest.raises(CommandError, match=message):
        dev_token(*args)


def test_dev_token_refuses_when_the_issuer_is_off_or_debug_is_off(db, settings):
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "ENABLED": False}
    with pytest.raises(CommandError, match="off"):
        dev_token("--company", str(COMPANY))
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "ENABLED": True}
    with pytest.raises(CommandError, match="DEBUG is off"):
        dev_token("--company", str(COMPANY), debug=False)


# Where the key is kept


def test_the_key_folder_defaults_to_var_under_base_dir(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    settings.COBEE_DEV_ISSUER = {"ENABLED": True}
    assert conf.key_file() == tmp_path / "var" / "dev-issuer-key.pem"
    assert checks.check_key_dir() == []


def test_without_a_key_folder_the_check_says_where_to_set_one(settings):
    del settings.BASE_DIR
    settings.COBEE_DEV_ISSUER = {"ENABLED": True}
    assert [e.id for e in checks.check_key_dir()] == ["cobee_devissuer.E002"]
    settings.COBEE_DEV_ISSUER = {"ENABLED": False}
    assert checks.check_key_dir() == []


# manage.py create_dev_person and dev_oidc_settings


def test_create_dev_person_for_the_sign_in_page_and_the_staff_group(db, settings):
    from django.contrib.auth.models import Group

    from cobee_django.devissuer.people import DevPerson

    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ADMIN_OIDC_GROUPS": ["Operators"]}
    out = io.StringIO()
    call_command("create_dev_person", "Ana Ops", "--email", "ana@example.com", "--company", str(COMPANY), stdout=out)
    person = DevPerson.objects.get()
    assert (person.subject, person.name, person.company_id, person.cobee_staff) == (
        "dev|ana@example.com",
        "Ana Ops",
        COMPANY,
        False,
    )
    assert Group.objects.filter(name="Operators").exists()
    assert "Created the group 'Operators'" in out.getvalue()
    # Again: the same person updated, the group left as it is.
    out = io.StringIO()
    call_command("create_dev_person", "Ana", "--email", "ana@example.com", "--cobee-staff", stdout=out)
    person = DevPerson.objects.get()
    assert (person.name, person.company_id, person.cobee_staff) == ("Ana", None, True)
    assert out.getvalue().startswith("Updated") and "group" not in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Ana"], "Pass --company"),
        (["Ana", "--company", "nope"], "not a UUID"),
        (["Ana", "--email", "nope", "--cobee-staff"], "not an email"),
        (["  ", "--cobee-staff"], "a name"),
    ],
)
def test_create_dev_person_refuses_bad_input(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_dev_person", *args)


def test_dev_oidc_settings_from_the_dev_issuers_discovery_document(db, settings, client):
    out = io.StringIO()
    call_command("dev_oidc_settings", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    namespace: dict = {"COBEE_DJANGO": {}}
    exec("\n".join(lines), namespace)  # the printed lines are valid settings
    settings.DEBUG = True
    document = client.get("/.well-known/openid-configuration").json()
    assert namespace["OIDC_OP_AUTHORIZATION_ENDPOINT"] == document["authorization_endpoint"]
    assert namespace["OIDC_OP_TOKEN_ENDPOINT"] == document["token_endpoint"]
    assert namespace["OIDC_OP_USER_ENDPOINT"] == document["userinfo_endpoint"]
    assert namespace["OIDC_OP_JWKS_ENDPOINT"] == document["jwks_uri"]
    assert namespace["COBEE_DJANGO"]["ADMIN_OIDC_ISSUER"] == document["issuer"]


def test_dev_oidc_settings_from_a_providers_url(db, token_issuer):
    from cobee_django.testing import JWKSServer

    # A provider's document without the sign-in endpoints (a machine-to-machine issuer's) is named.
    with (
        JWKSServer(token_issuer, openid=True) as provider,
        pytest.raises(CommandError, match="no 'authorization_endpoint'"),
    ):
        call_command("dev_oidc_settings", "--url", provider.url("/.well-known/openid-configuration"))
    with pytest.raises(CommandError, match="not an http"):
        call_command("dev_oidc_settings", "--url", "file:///etc/passwd")
    with pytest.raises(CommandError, match="Could not read"):
        call_command("dev_oidc_settings", "--url", "http://127.0.0.1:9/nothing")


def test_oidc_settings_needs_every_field():
    from cobee_django.devissuer.oidc_provider import oidc_settings

    document = {
        "authorization_endpoint": "https://idp.example/authorize",
        "token_endpoint": "https://idp.example/oauth/token",
        "userinfo_endpoint": "https://idp.example/userinfo",
        "jwks_uri": "https://idp.example/.well-known/jwks.json",
        "issuer": "https://idp.example/",
    }
    assert oidc_settings(document)["OIDC_OP_USER_ENDPOINT"] == "https://idp.example/userinfo"
    with pytest.raises(ValueError, match="userinfo_endpoint"):
        oidc_settings({**document, "userinfo_endpoint": None})
