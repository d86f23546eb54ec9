"""``manage.py check --deploy``: what works in development but not in production, each with a hint."""

from __future__ import annotations

import uuid

import pytest
from django.core import checks

from cobee_django.checks import W_CACHE_NOT_SHARED, W_ISSUER_SLASH, W_OIDC_INSECURE

AUDIENCE = "https://api.example"
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/7"}


def deploy_ids(**kwargs) -> list[str]:
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security], **kwargs)
    for message in found:
        if message.id.startswith("cobee_"):
            assert message.hint, message.id  # every check of ours says what to do
    return [message.id for message in found]


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.CACHES = {"default": REDIS}
    settings.COBEE_DJANGO = {"ISSUER": "https://tenant.eu.auth0.com/", "AUDIENCE": AUDIENCE}
    for name in (
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
        "OIDC_OP_JWKS_ENDPOINT",
    ):
        setattr(settings, name, f"https://tenant.eu.auth0.com/{name.lower()}")
    return settings


def test_a_production_like_project_is_clean(production):
    ids = deploy_ids()
    assert not {W_ISSUER_SLASH, W_OIDC_INSECURE, W_CACHE_NOT_SHARED} & set(ids)


def test_the_checks_run_only_with_deploy(production):
    production.COBEE_DJANGO = {"ISSUER": "https://tenant.eu.auth0.com", "AUDIENCE": AUDIENCE}
    assert W_ISSUER_SLASH in deploy_ids()
    assert W_ISSUER_SLASH not in [m.id for m in checks.run_checks(tags=[checks.Tags.security])]


def test_an_issuer_without_its_slash(production):
    production.COBEE_DJANGO = {
        "ISSUERS": [
            {"ISSUER": "https://one.eu.auth0.com", "AUDIENCE": AUDIENCE},
            {"ISSUER": "https://two.eu.auth0.com/", "AUDIENCE": AUDIENCE},
        ]
    }
    found = [m for m in checks.run_checks(include_deployment_checks=True) if m.id == W_ISSUER_SLASH]
    assert len(found) == 1
    assert "'https://one.eu.auth0.com/'" in found[0].hint


@pytest.mark.parametrize(
    ("value", "warned"),
    [
        ("http://idp.example/authorize", True),
        ("https://127.0.0.1:8000/authorize", True),
        ("http://localhost:8000/authorize", True),
        ("https://idp.example/authorize", False),
    ],
)
def test_oidc_endpoints_on_http_or_loopback_with_debug_off(production, value, warned):
    production.OIDC_OP_AUTHORIZATION_ENDPOINT = value
    assert (W_OIDC_INSECURE in deploy_ids()) is warned
    production.DEBUG = True
    assert W_OIDC_INSECURE not in deploy_ids()


def test_the_admin_oidc_issuer_on_loopback(production):
    production.COBEE_DJANGO = {**production.COBEE_DJANGO, "ADMIN_OIDC_ISSUER": "http://127.0.0.1:8000/"}
    assert W_OIDC_INSECURE in deploy_ids()


@pytest.mark.parametrize(
    ("caches", "cobee", "warnings"),
    [
        ({"default": LOCMEM}, {}, 1),  # the throttle cache (and JWKS_CACHE_ALIAS defaults to None)
        ({"default": REDIS, "keys": LOCMEM}, {"JWKS_CACHE_ALIAS": "keys"}, 1),
        ({"default": LOCMEM, "keys": LOCMEM}, {"JWKS_CACHE_ALIAS": "keys"}, 2),
        ({"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}, {}, 1),
        ({"default": REDIS}, {"JWKS_CACHE_ALIAS": "default"}, 0),
    ],
)
def test_caches_no_two_processes_share(production, caches, cobee, warnings):
    production.CACHES = caches
    production.COBEE_DJANGO = {**production.COBEE_DJANGO, **cobee}
    assert deploy_ids().count(W_CACHE_NOT_SHARED) == warnings


def test_dev_clients_stored_with_debug_off(production, db):
    from cobee_django.devissuer.checks import W001, check_dev_clients
    from cobee_django.devissuer.models import DevClient

    assert check_dev_clients(databases=["default"]) == []
    DevClient.objects.create_client(name="ci", company_id=uuid.UUID("5e9e9701-9883-447d-9884-46e75993e33b"))
    found = check_dev_clients(databases=["default"])
    assert [m.id for m in found] == [W001] and found[0].hint
    assert check_dev_clients() == []  # a database check: only with --database
    production.DEBUG = True
    assert check_dev_clients(databases=["default"]) == []
