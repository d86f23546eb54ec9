"""System check: the dev issuer never runs with DEBUG off unless explicitly allowed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register

from . import conf

E001 = "devissuer.E001"


@register(Tags.security)
def check_debug(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    if not conf.refuses_to_run():
        return []
    return [Error(conf.REFUSAL, hint=conf.REFUSAL_HINT, id=E001)]
