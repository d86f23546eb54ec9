"""Shared fixtures. Feature-specific fixtures live next to their tests or in cobee_django.testing."""

from __future__ import annotations

import os

import pytest

# Our own fixtures for users (registered by entry point once the package is installed).
pytest_plugins = ["cobee_django.testing.pytest_plugin"]


def pytest_report_header(config: pytest.Config) -> str:
    import django
    from django.conf import settings

    return f"cobee_django tests: Django {django.get_version()}, database {settings.DATABASES['default']['ENGINE']}"


def on_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


@pytest.fixture
def require_postgres() -> None:
    if not on_postgres():
        if os.environ.get("COBEE_REQUIRE_POSTGRES"):
            pytest.fail("COBEE_REQUIRE_POSTGRES is set but the database is not PostgreSQL")
        pytest.skip("needs DATABASE_URL=postgres://...")


@pytest.fixture
def tenants(db):
    """A corporation with companies a and b, a lone company c, and a second corporation."""
    from types import SimpleNamespace

    from cobee_django.models import Company, Corporation

    corp = Corporation.objects.create(name="Acme group")
    other_corp = Corporation.objects.create(name="Other group")
    a = Company.objects.create(name="Acme A", corporation=corp)
    b = Company.objects.create(name="Acme B", corporation=corp)
    c = Company.objects.create(name="Lone C")
    return SimpleNamespace(corp=corp.pk, other_corp=other_corp.pk, a=a.pk, b=b.pk, c=c.pk)


# --- authentication fixtures -------------------------------------------------------------------

AUDIENCE = "https://api.test.example"


@pytest.fixture(scope="session")
def rsa_key():
    """One RSA key per session: generating keys is the slow part of building an issuer."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_server():
    from cobee_django.testing import JWKSServer

    with JWKSServer() as server:
        yield server


@pytest.fixture
def token_issuer(jwks_server, rsa_key):
    """An issuer whose ``iss`` is the JWKS server's base URL; its key set is served there."""
    from cobee_django.testing import TokenIssuer

    issuer = TokenIssuer(issuer=jwks_server.base_url, audience=AUDIENCE, key=rsa_key)
    jwks_server.serve(issuer)
    return issuer


@pytest.fixture
def auth_settings(settings, token_issuer):
    """COBEE_DJANGO trusting ``token_issuer`` (key set fetched from ``jwks_server``, no shared cache)."""
    settings.COBEE_DJANGO = {
        "ISSUER": token_issuer.issuer,
        "AUDIENCE": AUDIENCE,
        "JWKS_CACHE_ALIAS": None,
    }
    return settings.COBEE_DJANGO


# --- Citus -------------------------------------------------------------------------------------


def on_citus() -> bool:
    from django.db import connection

    from cobee_django.db.citus import is_citus

    return is_citus(connection)


@pytest.fixture
def guard_lookup_aliases(monkeypatch) -> list[object]:
    """The database alias each lookup of the write guards reads (they all go through ``unscoped_rows``)."""
    from cobee_django import guards

    aliases: list[object] = []
    real = guards.unscoped_rows

    def recording(model, using=None):
        aliases.append(using)
        return real(model, using)

    monkeypatch.setattr(guards, "unscoped_rows", recording)
    return aliases


@pytest.fixture
def not_on_citus(db) -> None:
    """For the few tests that cannot hold on Citus by design: each names why next to its use."""
    if on_citus():
        pytest.skip("cannot hold on Citus by design (the comment at the test says why)")
