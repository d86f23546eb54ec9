from __future__ import annotations

import sys
from importlib.util import find_spec
from typing import Any

from django.apps import AppConfig, apps
from django.core.signals import setting_changed

__all__: list[str] = []

_OPENTELEMETRY = "cobee_django.contrib.opentelemetry"


class CobeeDjangoConfig(AppConfig):
    name = "cobee_django"
    verbose_name = "Cobee tenancy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks and the settings reload receiver.
        from . import checks, conf  # noqa: F401
        from .db import checks as db_checks  # noqa: F401
        from .db import rls  # noqa: F401  (installs the row-level security wrapper)

        _install_tenancy()
        _configure_telemetry()
        setting_changed.connect(_on_setting_changed, dispatch_uid="cobee_django.apps.integrations")
        if apps.is_installed("drf_spectacular"):
            # Registers the OpenAPI extension of JWTAuthentication (the optional extra "openapi").
            from .contrib import drf_spectacular  # noqa: F401


def _install_tenancy() -> None:
    """Scope relation accessors and joins, and connect the write guards (idempotent: once per process)."""
    from django.db.models.signals import m2m_changed, pre_save

    from . import _django, guards, membership  # noqa: F401  (membership installs state.for_corporation's lookup)

    _django.install_relation_scoping()
    _django.install_join_restrictions()
    m2m_changed.connect(guards.check_m2m_add, dispatch_uid="cobee_django.m2m_guard")
    pre_save.connect(guards.check_any_save, dispatch_uid="cobee_django.reference_guard")


def _configure_telemetry() -> None:
    """Load the OpenTelemetry integration when ``TELEMETRY`` is on (or turn a loaded one off).

    With telemetry off and never on, neither the integration nor the OpenTelemetry API is imported.
    """
    from .conf import user_settings

    wanted = user_settings().get("TELEMETRY") is True and find_spec("opentelemetry") is not None
    if wanted or _OPENTELEMETRY in sys.modules:
        from .contrib import opentelemetry

        opentelemetry.configure()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    from .conf import is_reloading

    if is_reloading(setting):
        _configure_telemetry()
