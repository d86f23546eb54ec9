from __future__ import annotations

from django.apps import AppConfig


class RlsAppConfig(AppConfig):
    """Tenant models protected by row-level security, for tests/test_rls.py."""

    name = "tests.rlsapp"
    label = "rlsapp"
    default_auto_field = "django.db.models.BigAutoField"
