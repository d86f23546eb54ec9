"""Shared fixtures. Feature-specific fixtures live next to their tests or in cobee_django.testing."""

from __future__ import annotations

import os

import pytest


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
