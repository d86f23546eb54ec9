"""The dev issuer's settings: the ``DEV_ISSUER`` dict of the project, and what it issues as.

``DEV_ISSUER`` keys (all optional):

- ``ENABLED`` (default ``True``): serve the issuer's endpoints.
- ``KEY_FILE`` (default ``var/dev-issuer-key.pem``): where the signing key is kept across restarts.
- ``ALLOW_WITHOUT_DEBUG`` (default ``False``): run even when ``DEBUG`` is off.
- ``TOKEN_LIFETIME`` (default ``86400``): seconds a token lives, as Auth0's and Cobee's.

The issuer URL and the audiences come from ``COBEE_DJANGO``: the tokens' ``iss`` is the first
configured issuer, so the API trusts them with no further configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from cobee_django.conf import IssuerSettings, get_settings

WITHOUT_DEBUG_ENV = "COBEE_DEV_ISSUER_WITHOUT_DEBUG"


def _raw() -> dict[str, Any]:
    return dict(getattr(settings, "DEV_ISSUER", None) or {})


def enabled() -> bool:
    return bool(_raw().get("ENABLED", True))


def key_file() -> Path:
    default = Path(settings.BASE_DIR) / "var" / "dev-issuer-key.pem"
    return Path(_raw().get("KEY_FILE") or default)


def token_lifetime() -> int:
    return int(_raw().get("TOKEN_LIFETIME", 86400))


REFUSAL = "The development token issuer is on while DEBUG is off."
REFUSAL_HINT = (
    "It mints tokens for any stored client and must never face production. Set COBEE_DJANGO_JWKS_URL "
    f"to trust a real issuer (which turns the dev issuer off), turn DEBUG on, or set {WITHOUT_DEBUG_ENV}=1 "
    "for a production-like local run."
)


def refuses_to_run() -> bool:
    """True when the issuer is on with DEBUG off and nobody explicitly allowed that."""
    return enabled() and not settings.DEBUG and not _raw().get("ALLOW_WITHOUT_DEBUG", False)


def served_issuer() -> IssuerSettings:
    """The issuer the dev issuer signs as: the first one ``COBEE_DJANGO`` trusts."""
    return get_settings().issuers[0]


def default_audience() -> str:
    """The audience of tokens requested without one (Auth0's tenant default audience)."""
    return sorted(served_issuer().audiences)[0]
