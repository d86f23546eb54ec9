"""DRF authentication with Auth0 access tokens, answering errors as RFC 6750 says.

Add :class:`JWTAuthentication` to ``DEFAULT_AUTHENTICATION_CLASSES`` (first, so its challenge is the
one DRF sends for missing credentials). On success ``request.user`` is a
:class:`~cobee_django.principal.ClientPrincipal` and ``request.auth`` the
:class:`~cobee_django.tokens.ValidatedToken`.

=====================================================  ======  =========================================
Request                                                Status  ``WWW-Authenticate``
=====================================================  ======  =========================================
no credentials                                         401     ``Bearer realm="api"``
a token that fails any rule                            401     ``... error="invalid_token", ...``
two credentials, a token in the URL or form body,      400     ``... error="invalid_request", ...``
a malformed ``Authorization: Bearer`` header
a valid token without the view's scopes                403     ``... error="insufficient_scope", ...``
no key set could ever be fetched from the issuer       503     (``Retry-After`` instead)
=====================================================  ======  =========================================

The error responses carry their challenge themselves (``APIException.auth_header``), so they work
with DRF's default exception handler and whatever position the class has in the list. Descriptions
are constant: a client never learns which rule failed, and nothing of the token is echoed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from . import audit, telemetry
from .conf import get_settings
from .jwks import KeySetUnavailable
from .principal import ClientPrincipal
from .reasons import Reason, TokenRejected
from .tokens import ValidatedToken, verify_token

INVALID_TOKEN_DESCRIPTION = "The access token is invalid or has expired."
INVALID_REQUEST_DESCRIPTION = "Send exactly one access token, in the Authorization header."
INSUFFICIENT_SCOPE_DESCRIPTION = "The access token does not grant the scope this request needs."
_TOKEN68 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


def bearer_challenge(
    realm: str | None = None,
    error: str | None = None,
    description: str | None = None,
    scope: Iterable[str] | None = None,
) -> str:
    """A ``WWW-Authenticate`` value for the Bearer scheme (RFC 6750 section 3)."""
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


class InvalidToken(APIException):
    """401 ``invalid_token``: the token is malformed, forged, expired or not for us."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = INVALID_TOKEN_DESCRIPTION
    default_code = "invalid_token"

    def __init__(self, realm: str | None = None) -> None:
        super().__init__()
        self.auth_header = bearer_challenge(realm, "invalid_token", INVALID_TOKEN_DESCRIPTION)


class InvalidRequest(APIException):
    """400 ``invalid_request``: several credentials, a token outside the header, a malformed header."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = INVALID_REQUEST_DESCRIPTION
    default_code = "invalid_request"

    def __init__(self, realm: str | None = None) -> None:
        super().__init__()
        self.auth_header = bearer_challenge(realm, "invalid_request", INVALID_REQUEST_DESCRIPTION)


class InsufficientScope(APIException):
    """403 ``insufficient_scope``, naming the scopes the request needs (raised by permission classes)."""

    status_code = status.HTTP_403_FORBIDDEN
    default_detail = INSUFFICIENT_SCOPE_DESCRIPTION
    default_code = "insufficient_scope"

    def __init__(self, scopes: Iterable[str] | None = None, realm: str | None = None) -> None:
        super().__init__()
        self.scopes = tuple(scopes or ())
        self.auth_header = bearer_challenge(realm, "insufficient_scope", INSUFFICIENT_SCOPE_DESCRIPTION, self.scopes)


class AuthenticationUnavailable(APIException):
    """503: the issuer's keys have never been obtained and the issuer cannot be reached."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Authentication is temporarily unavailable; retry later."
    default_code = "temporarily_unavailable"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.wait = retry_after


def _has_form_token(request: Request) -> bool:
    django_request = request._request
    content_type = django_request.META.get("CONTENT_TYPE", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return False
    return "access_token" in django_request.POST


class JWTAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer <token>`` with an Auth0 access token.

    Knobs for subclasses: ``www_authenticate_realm`` (default: the ``REALM`` setting), and
    :meth:`get_token_from_header`, :meth:`verify` to change where the token comes from or how the
    validated token becomes a user.
    """

    keyword = "bearer"
    www_authenticate_realm: str | None = None

    @telemetry.traced("cobee_django.authenticate")
    def authenticate(self, request: Request) -> tuple[ClientPrincipal, ValidatedToken] | None:
        meta = request.META
        header = meta.get("HTTP_AUTHORIZATION")
        # RFC 6750 allows tokens in the URL and the form body; URLs end up in logs and caches, so we
        # refuse them, and a second credential could be a confused-deputy trick.
        if ("access_token" in meta.get("QUERY_STRING", "") and "access_token" in request.query_params) or (
            meta.get("REQUEST_METHOD") not in ("GET", "HEAD") and _has_form_token(request)
        ):
            self.reject(request, Reason.MULTIPLE_CREDENTIALS if header else Reason.TOKEN_IN_URL_OR_BODY)
        if header is None:
            return None
        token = self.get_token_from_header(request, header)
        if token is None:
            return None
        return self.verify(request, token)

    def get_token_from_header(self, request: Request, header: str) -> str | None:
        """The credentials of a Bearer ``Authorization`` header; ``None`` for another scheme."""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != self.keyword:
            return None
        # RFC 6750 section 2.1: ``"Bearer" 1*SP b64token``; several spaces are still one credential.
        credentials = credentials.lstrip(" ")
        if "," in credentials:
            self.reject(request, Reason.MULTIPLE_CREDENTIALS)
        if not credentials or " " in credentials:
            self.reject(request, Reason.MALFORMED_HEADER)
        return credentials

    def verify(self, request: Request, token: str) -> tuple[ClientPrincipal, ValidatedToken]:
        """Verify ``token`` and return DRF's ``(user, auth)`` pair, or raise the RFC 6750 answer."""
        try:
            validated = verify_token(token)
        except TokenRejected as exc:
            if not _TOKEN68.issuperset(token):
                # Not even token68 (RFC 7235): a malformed request rather than a bad token. Checked
                # only on failure, since the strict parser already refuses such characters.
                self.reject(request, Reason.MALFORMED_HEADER)
            self.reject(request, exc.reason, exc.client_id)
        except KeySetUnavailable:
            audit.token_rejected(type(self), request, Reason.KEY_SET_UNAVAILABLE)
            raise AuthenticationUnavailable(get_settings().unavailable_retry_after) from None
        audit.token_accepted(type(self), request, validated)
        return validated.principal, validated

    def reject(self, request: Request, reason: Reason, client_id: str | None = None) -> NoReturn:
        """Record the rejection and raise the matching RFC 6750 error (never returns)."""
        audit.token_rejected(type(self), request, reason, client_id)
        if reason in (Reason.MALFORMED_HEADER, Reason.MULTIPLE_CREDENTIALS, Reason.TOKEN_IN_URL_OR_BODY):
            raise InvalidRequest(self.www_authenticate_realm)
        raise InvalidToken(self.www_authenticate_realm)

    def authenticate_header(self, request: Request) -> str:
        return bearer_challenge(self.www_authenticate_realm)
