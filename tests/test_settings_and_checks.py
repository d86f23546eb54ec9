from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from cobee_django import conf
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


# --- the settings table: validation never raises, every problem reported, docs held to the table --------


DOCUMENTED_IDS = set(
    re.findall(r"`(cobee_django\.[EW]\d{3})`", (Path(__file__).parents[1] / "docs/checks.md").read_text())
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=8)
    | st.sampled_from(
        [
            "https://t.example/",
            "HTTPS://T.EXAMPLE/",
            "http://127.0.0.1:8000/",
            "http://[::1",
            "RS256",
            "HS256",
            "default",
            "",
            'a"b',
            object(),
            math.nan,
        ]
    )
)
VALUES = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=3)
        | st.dictionaries(
            st.text(max_size=12) | st.integers() | st.sampled_from(sorted(conf.ISSUER_KEYS)), inner, max_size=3
        )
    ),
    max_leaves=6,
)
KEYS = [setting.name for setting in conf.SETTINGS]


def _assert_well_formed(problems) -> None:
    assert isinstance(problems, list)
    for problem in problems:
        assert problem.id in DOCUMENTED_IDS and problem.msg and problem.hint


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_validation_never_raises_and_a_clean_dict_always_builds(key, value) -> None:
    raw = {key: value} if key == "ISSUERS" else {**GOOD, key: value}
    problems = conf.validate(raw)
    _assert_well_formed(problems)
    if not problems:
        built = conf._build(raw)
        assert built.issuers and all(issuer.audiences for issuer in built.issuers)


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(conf.ISSUER_KEYS)), value=VALUES, whole=VALUES)
def test_issuers_entries_and_whole_dicts_never_raise(key, value, whole) -> None:
    _assert_well_formed(conf.validate({"ISSUERS": [{**GOOD, key: value}]}))
    _assert_well_formed(conf.validate(whole))
    _assert_well_formed(conf.validate({**GOOD, 5: 1, None: 2, "LEWAY": 3}))


@pytest.mark.parametrize("key", KEYS)
def test_every_key_refuses_a_wrong_type_with_an_id(key) -> None:
    raw = {key: 5} if key == "ISSUERS" else {**GOOD, key: object()}
    assert conf.validate(raw), key
    for wrong in (5, [5], {"a": 1}, b"x"):
        if key in ("LEEWAY", "MAX_TOKEN_BYTES", "JWKS_TIMEOUT", "JWKS_MAX_BYTES", "JWKS_CACHE_TTL") and wrong == 5:
            continue  # numbers in range are right for number keys
        if key == "DPOP_PROOF_MAX_AGE" and wrong == 5:
            continue  # numbers in range are right for number keys
        if (
            key in ("JWKS_REFRESH_COOLDOWN", "UNAVAILABLE_RETRY_AFTER", "TOKEN_CACHE_SIZE", "CONNECT_TIMEOUT")
            and wrong == 5
        ):
            continue
        assert conf.validate({key: wrong} if key == "ISSUERS" else {**GOOD, key: wrong}), (key, wrong)


@pytest.mark.parametrize(
    ("conf_value", "expected"),
    [
        ({**GOOD, "ALGORITHMS": 5}, {"cobee_django.E008"}),
        ({"ISSUERS": 5}, {"cobee_django.E006"}),
        ({**GOOD, "ALLOWED_GRANT_TYPES": 5}, {"cobee_django.E006"}),
        ({**GOOD, "AUDIENCE": 5}, {"cobee_django.E002"}),
        ({**GOOD, "ISSUER": 5}, {"cobee_django.E003"}),
        ({**GOOD, "JWKS_URL": 5}, {"cobee_django.E004"}),
        ({**GOOD, "JWKS_CACHE_ALIAS": 5}, {"cobee_django.E006"}),
        ({**GOOD, "ADMIN_OIDC_GROUPS": 5}, {"cobee_django.E006"}),
        ({**GOOD, "OPENAPI_TOKEN_URL": "http://[::1"}, {"cobee_django.E006"}),
        ({**GOOD, "ISSUER": "https://[::1"}, {"cobee_django.E003"}),
        ("not a dict", {"cobee_django.E006"}),
    ],
)
def test_wrong_types_are_check_errors_not_crashes(conf_value, expected) -> None:
    assert {problem.id for problem in conf.validate(conf_value)} == expected
    assert expected <= set(check_ids(COBEE_DJANGO=conf_value))


def test_every_problem_is_reported_not_only_the_first() -> None:
    raw = {"ISSUERS": [{"AUDIENCE": "", "JWKS_URL": "http://keys.example/", "AUTH0_CLAIMS": "yes"}], "LEEWAY": -1}
    ids = [problem.id for problem in conf.validate(raw)]
    # The entry lacks its issuer AND has a bad audience, a bad key URL and a bad flag; LEEWAY too.
    for expected in ("cobee_django.E001", "cobee_django.E002", "cobee_django.E004", "cobee_django.E006"):
        assert expected in ids, ids
    assert ids.count("cobee_django.E006") == 2
    with override_settings(COBEE_DJANGO=raw), pytest.raises(ImproperlyConfigured) as info:
        get_settings()
    for expected in ("E001", "E002", "E004", "E006"):
        assert f"cobee_django.{expected}" in str(info.value)


def test_the_check_and_the_fetcher_share_one_url_rule(jwks_server, token_issuer) -> None:
    from cobee_django.jwks import fetch_jwks

    url = jwks_server.jwks_url.replace("http://", "HTTP://", 1)
    assert check_ids(COBEE_DJANGO={**GOOD, "JWKS_URL": url}) == []
    assert fetch_jwks(url, timeout=5, max_bytes=1 << 20)["keys"]
    for refused in ("http://keys.example/jwks.json", "ftp://127.0.0.1/x", "https:///x", " https://t.example/"):
        assert "cobee_django.E004" in check_ids(COBEE_DJANGO={**GOOD, "JWKS_URL": refused})
        assert not conf.is_secure_url(refused)


def _rendered_default(setting: conf.Setting) -> str:
    if setting.name in ("ISSUER", "AUDIENCE"):
        return "required"
    value = setting.default
    return f"`{value}`" if value is None or isinstance(value, bool) else f"`{json.dumps(value)}`"


def test_the_settings_page_matches_the_table() -> None:
    page = (Path(__file__).parents[1] / "docs/settings.md").read_text()
    rows = {}
    section = ""
    for line in page.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        match = re.match(r"^\| `([A-Z0-9_]+)` \| (.+?) \| (.+?) \| (.+) \|$", line)
        if match:
            rows[match.group(1)] = (section, match.group(2), match.group(3))
    assert list(rows) == [setting.name for setting in conf.SETTINGS]
    for setting in conf.SETTINGS:
        assert rows[setting.name] == (setting.section, setting.type, _rendered_default(setting)), setting.name


def test_the_typed_settings_have_one_attribute_per_setting() -> None:
    attributes = {field.name for field in fields(conf.Settings)} - {"issuers", "raw"}
    table = {setting.attribute for setting in conf.SETTINGS if not setting.per_issuer} - {"issuers"}
    assert attributes == table
    assert {setting.name: setting.default for setting in conf.SETTINGS} == conf.DEFAULTS


def test_a_settings_change_reaches_every_cache_through_the_signal(auth_settings) -> None:
    from cobee_django import jwks, tokens

    seen = []
    conf.reload_hooks.append(lambda: seen.append(True))  # the deprecated hook list still runs
    try:
        verifier = tokens.get_verifier()
        built = get_settings()
        conf.reload()
        assert get_settings() is not built and tokens.get_verifier() is not verifier
        assert seen == [True]
        with override_settings(COBEE_DJANGO={**GOOD, "LEEWAY": 3}):
            assert tokens.get_verifier().leeway == 3 and jwks._registry == {}
    finally:
        conf.reload_hooks.pop()
