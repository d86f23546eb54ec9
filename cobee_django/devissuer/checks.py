"""System checks of the dev issuer: never on with DEBUG off unless allowed; a key folder to keep its key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from . import conf

__all__: list[str] = []

E001 = "cobee_devissuer.E001"
E002 = "cobee_devissuer.E002"
W001 = "cobee_devissuer.W001"


@register(Tags.security)
def check_debug(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E001: the issuer mints tokens for any stored client, so it must never face production."""
    if not conf.refuses_to_run():
        return []
    return [Error(conf.REFUSAL, hint=conf.REFUSAL_HINT, id=E001)]


@register()
def check_key_dir(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E002: without ``KEY_DIR`` or ``BASE_DIR`` there is no folder to keep the signing key in."""
    if not conf.enabled() or conf.key_dir_or_none() is not None:
        return []
    return [
        Error(
            "The development token issuer has no folder to keep its signing key in.",
            hint='Set COBEE_DEV_ISSUER = {"KEY_DIR": BASE_DIR / "var"} (a git-ignored folder), or define BASE_DIR.',
            id=E002,
        )
    ]


@register(Tags.database, Tags.security, deploy=True)
def check_dev_clients(
    app_configs: Sequence[Any] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: development clients (each with a secret that mints tokens) stored where DEBUG is off.

    A database check: ``manage.py check --deploy --database default``.
    """
    from django.conf import settings

    if settings.DEBUG or not databases:
        return []
    from django.db import DatabaseError

    from .models import DevClient

    found: list[CheckMessage] = []
    for alias in databases:
        try:
            count = DevClient.objects.using(alias).count()
        except DatabaseError:
            continue  # not migrated there: nothing stored
        if count:
            found.append(
                Warning(
                    f"{count} development client(s) of the dev issuer are stored in the database {alias!r} while "
                    "DEBUG is off: their secrets obtain tokens from the dev issuer wherever it runs.",
                    hint="Delete them (DevClient in the admin, or a shell) from databases that serve production, "
                    "and keep the dev issuer out of production settings.",
                    id=W001,
                )
            )
    return found
