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

The error responses (:mod:`cobee_django.exceptions`) carry their challenge themselves
(``APIException.auth_header``, built by :mod:`cobee_django.bearer`), so they work with DRF's default
exception handler and whatever position the class has in the list. Descriptions are constant: a
client never learns which rule failed, and nothing of the token is echoed.
"""

from __future__ import annotations

from typing import NoReturn

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from . import audit, bearer, instrumentation
from .conf import get_settings
from .exceptions import (
    AuthenticationUnavailable,
    InvalidRequest,
    InvalidToken,
    KeySetUnavailable,
    Reason,
    TokenRejected,
)
from .principal import ClientPrincipal
from .tokens import ValidatedToken, verify_token

__all__ = ["JWTAuthentication"]

_TOKEN68 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")


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

    @instrumentation.traced("cobee_django.authenticate")
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
        return bearer.challenge(self.www_authenticate_realm)
