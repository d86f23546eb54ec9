"""System checks of the dev issuer: never on with DEBUG off unless allowed; a key folder to keep its key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from . import conf

__all__: list[str] = []

E001 = "cobee_devissuer.E001"
E002 = "cobee_devissuer.E002"


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
