from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from cobee_django.authentication import JWTAuthentication
from cobee_django.conf import get_settings

GOOD = {"ISSUER": "https://tenant.eu.auth0.com/", "AUDIENCE": "https://api.example"}


def check_ids(**overrides: object) -> list[str]:
    with override_settings(**overrides):
        return sorted({m.id for m in run_checks() if m.id and m.id.startswith("cobee_django.")})


def test_project_settings_pass_the_checks() -> None:
    assert check_ids() == []


def test_defaults_fill_a_minimal_dict() -> None:
    with override_settings(COBEE_DJANGO=GOOD):
        s = get_settings()
        (issuer,) = s.issuers
        assert issuer.issuer == GOOD["ISSUER"]
        assert issuer.audiences == {"https://api.example"}
        assert issuer.jwks_url == "https://tenant.eu.auth0.com/.well-known/jwks.json"
        assert issuer.allowed_grant_types == {"client-credentials"}
        assert s.algorithms == {"RS256"}
        assert s.leeway == 30
        assert s.max_token_bytes == 16384


def test_override_settings_reloads() -> None:
    with override_settings(COBEE_DJANGO={**GOOD, "LEEWAY": 5}):
        assert get_settings().leeway == 5
    with override_settings(COBEE_DJANGO={**GOOD, "LEEWAY": 7}):
        assert get_settings().leeway == 7


def test_several_issuers_inherit_top_level_defaults() -> None:
    conf = {
        "ISSUERS": [
            {"ISSUER": "https://a.example/", "AUDIENCE": "api"},
            {
                "ISSUER": "https://b.example/",
                "AUDIENCE": ["api", "api2"],
                "AUTH0_CLAIMS": False,
                "ALLOWED_GRANT_TYPES": None,
                "JWKS_URL": "https://b.example/keys",
            },
        ],
        "ALLOWED_CLIENTS": ["c1"],
    }
    with override_settings(COBEE_DJANGO=conf):
        s = get_settings()
        a = s.issuer("https://a.example/")
        b = s.issuer("https://b.example/")
        assert a is not None and b is not None
        assert a.allowed_clients == {"c1"} and a.auth0_claims is True
        assert b.allowed_grant_types is None and b.jwks_url == "https://b.example/keys"
        assert b.audiences == {"api", "api2"}
        assert s.issuer("https://a.example") is None  # exact match only


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({}, "cobee_django.E001"),
        ({"AUDIENCE": "x"}, "cobee_django.E001"),
        ({"ISSUER": "https://t.example/"}, "cobee_django.E002"),
        ({"ISSUER": "https://t.example/", "AUDIENCE": ""}, "cobee_django.E002"),
        ({"ISSUER": "https://t.example/", "AUDIENCE": [1]}, "cobee_django.E002"),
        ({**GOOD, "ISSUER": "http://tenant.example/"}, "cobee_django.E003"),
        ({**GOOD, "ISSUER": "tenant.example"}, "cobee_django.E003"),
        ({**GOOD, "JWKS_URL": "http://keys.example/jwks.json"}, "cobee_django.E004"),
        ({**GOOD, "LEWAY": 10}, "cobee_django.E005"),
        ({"ISSUERS": [{**GOOD, "AUDIENCES": "x"}]}, "cobee_django.E005"),
        ({**GOOD, "LEEWAY": "30"}, "cobee_django.E006"),
        ({**GOOD, "LEEWAY": -1}, "cobee_django.E006"),
        ({**GOOD, "TOKEN_CACHE_SIZE": True}, "cobee_django.E006"),
        ({**GOOD, "MAX_TOKEN_BYTES": float("nan")}, "cobee_django.E006"),
        ({**GOOD, "REALM": 'a"b'}, "cobee_django.E006"),
        ({**GOOD, "ALLOWED_GRANT_TYPES": "client-credentials"}, "cobee_django.E006"),
        ({**GOOD, "ROW_LEVEL_SECURITY": "yes"}, "cobee_django.E006"),
        ({"ISSUERS": ["https://t.example/"]}, "cobee_django.E006"),
        ({**GOOD, "ISSUERS": [GOOD]}, "cobee_django.E007"),
        ({**GOOD, "ALGORITHMS": ["HS256"]}, "cobee_django.E008"),
        ({**GOOD, "ALGORITHMS": []}, "cobee_django.E008"),
        ({**GOOD, "ALGORITHMS": "RS256"}, "cobee_django.E008"),
        ({**GOOD, "JWKS_CACHE_ALIAS": "nope"}, "cobee_django.E009"),
    ],
)
def test_misconfiguration_is_a_check_error_and_refuses_to_load(conf: dict, expected: str) -> None:
    assert expected in check_ids(COBEE_DJANGO=conf)
    with override_settings(COBEE_DJANGO=conf), pytest.raises(ImproperlyConfigured, match=r"cobee_django\.E0"):
        get_settings()


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000/", "http://localhost:9000/", "http://[::1]:8000/"])
def test_plain_http_is_fine_on_loopback(issuer: str) -> None:
    assert check_ids(COBEE_DJANGO={**GOOD, "ISSUER": issuer, "JWKS_URL": f"{issuer}keys"}) == []


def test_missing_middleware_is_reported() -> None:
    from django.conf import settings

    without = [m for m in settings.MIDDLEWARE if m != "cobee_django.middleware.TenantMiddleware"]
    assert check_ids(MIDDLEWARE=without) == ["cobee_django.E010"]


def test_middleware_before_authentication_is_reported() -> None:
    from django.conf import settings

    without = [m for m in settings.MIDDLEWARE if m != "cobee_django.middleware.TenantMiddleware"]
    assert check_ids(MIDDLEWARE=["cobee_django.middleware.TenantMiddleware", *without]) == ["cobee_django.E011"]


def test_suite_runs_on_the_requested_database() -> None:
    """CI's PostgreSQL run must really be on PostgreSQL, not silently on SQLite."""
    import os

    from django.db import connection

    if not os.environ.get("COBEE_REQUIRE_POSTGRES"):
        pytest.skip("only meaningful when COBEE_REQUIRE_POSTGRES is set")
    assert connection.vendor == "postgresql"


JWT = "cobee_django.authentication.JWTAuthentication"
SESSION = "rest_framework.authentication.SessionAuthentication"
BASIC = "rest_framework.authentication.BasicAuthentication"


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        ([JWT], []),
        ([JWT, SESSION], []),
        ([BASIC, JWT], []),  # Basic answers 401 with its own challenge
        ([], ["cobee_django.W002"]),
        ([SESSION], ["cobee_django.W002"]),
        ([SESSION, JWT], ["cobee_django.W003"]),
        ([BASIC, SESSION, JWT], ["cobee_django.W003"]),
        (["tests.test_settings_and_checks.MyJWT"], []),
    ],
)
def test_jwt_authentication_must_be_a_default_class_before_any_403_class(classes, expected) -> None:
    from django.conf import settings

    rest = {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": classes}
    with override_settings(REST_FRAMEWORK=rest):
        messages = [m for m in run_checks() if m.id in ("cobee_django.W002", "cobee_django.W003")]
    assert [m.id for m in messages] == expected
    assert all(m.hint and m.level == 30 for m in messages)  # warnings, with a hint


class MyJWT(JWTAuthentication):
    """A project's subclass counts as JWTAuthentication."""
