from __future__ import annotations

from importlib.util import find_spec

from django.apps import AppConfig

__all__ = ["CobeeDjangoConfig"]


class CobeeDjangoConfig(AppConfig):
    name = "cobee_django"
    verbose_name = "Cobee tenancy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks and the settings reload receiver.
        from . import checks, conf  # noqa: F401
        from .db import checks as db_checks  # noqa: F401
        from .db import rls  # noqa: F401  (installs the row-level security wrapper)
        from .tenancy_setup import install

        install()
        from . import telemetry

        telemetry.configure()  # OpenTelemetry receivers, when COBEE_DJANGO["TELEMETRY"] is on
        if find_spec("drf_spectacular") is not None:
            # Registers the OpenAPI extension of JWTAuthentication (the optional extra "openapi").
            from . import openapi  # noqa: F401
