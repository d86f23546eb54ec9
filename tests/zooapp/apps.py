from __future__ import annotations

from django.apps import AppConfig


class ZooAppConfig(AppConfig):
    """Tenant and plain models linked by every relation kind, for tests/test_relation_zoo.py."""

    name = "tests.zooapp"
    label = "zoo"
    default_auto_field = "django.db.models.BigAutoField"
