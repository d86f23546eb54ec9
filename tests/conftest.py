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
