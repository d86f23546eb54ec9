"""RFC 6750 in one place: the ``Bearer`` challenge, its error codes and constant descriptions.

Every ``WWW-Authenticate: Bearer`` header the package sends is built here: by the authentication
errors (:mod:`cobee_django.exceptions`), by ``JWTAuthentication.authenticate_header`` for DRF's own
401s, and for a 403 of ``HasScopes``, which answers ``False`` (so that it composes with ``|`` and ``~``)
and leaves the scopes it lacked on the request for :func:`add_insufficient_scope_challenge`.
Descriptions are constant: a client never learns which rule failed, and nothing is echoed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest, HttpResponseBase

from .conf import get_settings

__all__: list[str] = []

#: RFC 6750 section 3.1 error codes.
INVALID_REQUEST = "invalid_request"
INVALID_TOKEN = "invalid_token"
INSUFFICIENT_SCOPE = "insufficient_scope"

INVALID_TOKEN_DESCRIPTION = "The access token is invalid or has expired."
INVALID_REQUEST_DESCRIPTION = "Send exactly one access token, in the Authorization header."
INSUFFICIENT_SCOPE_DESCRIPTION = "The access token does not grant the scope this request needs."

#: Attribute of the ``HttpRequest`` where ``HasScopes`` leaves the scopes a refused request lacked.
_INSUFFICIENT_SCOPE_ATTR = "cobee_insufficient_scope"
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


def challenge(
    realm: str | None = None,
    error: str | None = None,
    description: str | None = None,
    scope: Iterable[str] | None = None,
) -> str:
    """A ``WWW-Authenticate`` value for the Bearer scheme (RFC 6750 section 3); realm defaults to ``REALM``."""
    parts = [f'realm="{realm or get_settings().realm}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        # Scope tokens cannot hold quotes or backslashes (RFC 6749 section 3.3); drop any that do.
        tokens = [s for s in scope if s and set(s) <= _SCOPE_CHARS]
        if tokens:
            parts.append(f'scope="{" ".join(tokens)}"')
    return "Bearer " + ", ".join(parts)


def remember_insufficient_scope(request: HttpRequest, scopes: Iterable[str]) -> None:
    """Note that ``request`` was refused for lacking ``scopes`` (its 403 then gets the challenge)."""
    setattr(request, _INSUFFICIENT_SCOPE_ATTR, tuple(sorted(scopes)))


def add_insufficient_scope_challenge(request: HttpRequest, response: HttpResponseBase) -> None:
    """Give a 403 caused by missing scopes its ``insufficient_scope`` challenge (RFC 6750 section 3.1)."""
    scopes = getattr(request, _INSUFFICIENT_SCOPE_ATTR, None)
    if scopes is not None and response.status_code == 403 and not response.has_header("WWW-Authenticate"):
        response["WWW-Authenticate"] = challenge(None, INSUFFICIENT_SCOPE, INSUFFICIENT_SCOPE_DESCRIPTION, scopes)
