"""The dev issuer's settings: the project's ``COBEE_DEV_ISSUER`` dict, and what it issues as.

``COBEE_DEV_ISSUER`` keys (all optional):

- ``ENABLED`` (default ``True``): serve the issuer's endpoints (they answer 404 when off).
- ``KEY_DIR`` (default ``BASE_DIR / "var"``): the folder the signing key is kept in across restarts,
  as ``dev-issuer-key.pem``. A folder the issuer creates gets a ``.gitignore`` of ``*``, so the key
  is never committed.
- ``ALLOW_WITHOUT_DEBUG`` (default ``False``): run even when ``DEBUG`` is off (production-like local runs).
- ``TOKEN_LIFETIME`` (default ``86400``): seconds a token lives, as Auth0's and Cobee's.

The issuer URL and the audiences come from ``COBEE_DJANGO``: the tokens' ``iss`` is the first
configured issuer, so the API trusts them with no further configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404

from cobee_django.conf import IssuerSettings, get_settings

__all__: list[str] = []

SETTING_NAME = "COBEE_DEV_ISSUER"
KEY_FILE_NAME = "dev-issuer-key.pem"


def _raw() -> dict[str, Any]:
    return dict(getattr(settings, SETTING_NAME, None) or {})


def enabled() -> bool:
    return bool(_raw().get("ENABLED", True))


def key_dir_or_none() -> Path | None:
    """The configured key folder, else ``BASE_DIR / "var"``, else None."""
    configured = _raw().get("KEY_DIR")
    if configured:
        return Path(configured)
    base_dir = getattr(settings, "BASE_DIR", None)
    return Path(base_dir) / "var" if base_dir else None


def key_file() -> Path:
    """Where the signing key is kept (the system check E002 reports a missing folder)."""
    folder = key_dir_or_none()
    if folder is None:
        raise ImproperlyConfigured(f'Set {SETTING_NAME}["KEY_DIR"]: the dev issuer keeps its key there.')
    return folder / KEY_FILE_NAME


def token_lifetime() -> int:
    return int(_raw().get("TOKEN_LIFETIME", 86400))


REFUSAL = "The development token issuer is on while DEBUG is off."
REFUSAL_HINT = (
    "It mints tokens for any stored client and must never face production. Remove 'cobee_django.devissuer' "
    f'from INSTALLED_APPS (or set {SETTING_NAME}["ENABLED"] = False) outside development, turn DEBUG on, or set '
    f'{SETTING_NAME}["ALLOW_WITHOUT_DEBUG"] = True for a production-like local run.'
)


def refuses_to_run() -> bool:
    """True when the issuer is on with DEBUG off and nobody explicitly allowed that."""
    return enabled() and not settings.DEBUG and not _raw().get("ALLOW_WITHOUT_DEBUG", False)


def require_serving() -> None:
    """Raise ``Http404`` unless the issuer may answer now: on, and DEBUG on or explicitly not needed.

    Every endpoint calls it on every request, with the settings of that moment: ``ready()`` and the
    system check only see the settings at start-up, and DEBUG can be turned off afterwards.
    """
    # A token minted with DEBUG off would reach production clients: refuse whatever ran at start-up.
    if not enabled():
        raise Http404("The development token issuer is off.")
    if refuses_to_run():
        raise Http404(f"{REFUSAL} It answers nothing until DEBUG is on again.")


def served_issuer() -> IssuerSettings:
    """The issuer the dev issuer signs as: the first one ``COBEE_DJANGO`` trusts."""
    return get_settings().issuers[0]


def default_audience() -> str:
    """The audience of tokens requested without one (Auth0's tenant default audience)."""
    return sorted(served_issuer().audiences)[0]
