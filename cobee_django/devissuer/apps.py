from __future__ import annotations

from django.apps import AppConfig

__all__: list[str] = []

_startup_checked = False


class DevIssuerConfig(AppConfig):
    name = "cobee_django.devissuer"
    #: Namespaced so that it never collides with a project's own app labels.
    label = "cobee_devissuer"
    verbose_name = "Development token issuer"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf

        global _startup_checked
        # System checks do not run under gunicorn or uvicorn, so refuse at startup as well. Only at
        # the process's first setup: test runners turn DEBUG off afterwards, on purpose.
        if _startup_checked:
            return
        _startup_checked = True
        if conf.refuses_to_run():
            # One line on stderr and a failed exit, from manage.py and servers alike: a configuration
            # refusal, not a crash, so no traceback to read through.
            raise SystemExit(f"{checks.E001}: {conf.REFUSAL} {conf.REFUSAL_HINT}")
