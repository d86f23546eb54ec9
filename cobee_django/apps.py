from __future__ import annotations

from django.apps import AppConfig


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
