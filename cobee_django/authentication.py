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

Finding and verifying the credential is :class:`cobee_django.credentials.RequestAuthenticator`'s job
(shared with plain Django views and Django Ninja); this class adapts it to DRF. The error responses
(:mod:`cobee_django.exceptions`) carry their challenge themselves
(``APIException.auth_header``, built by :mod:`cobee_django.bearer`), so they work with DRF's default
exception handler and whatever position the class has in the list. Descriptions are constant: a
client never learns which rule failed, and nothing of the token is echoed.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from .credentials import RequestAuthenticator
from .tokens import ValidatedToken

__all__ = ["JWTAuthentication"]


#: The authenticators of :meth:`JWTAuthentication.get_authenticator`, by class, realm and sender.
_authenticators: dict[tuple[type[RequestAuthenticator], str | None, type], RequestAuthenticator] = {}


class JWTAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer <token>`` with an Auth0 access token.

    Knobs for subclasses: ``www_authenticate_realm`` (default: the ``REALM`` setting),
    ``authenticator_class`` (a :class:`~cobee_django.credentials.RequestAuthenticator` subclass, to
    change where the credential comes from) and :meth:`get_user` (to map the validated token to
    another user object).
    """

    www_authenticate_realm: str | None = None
    authenticator_class: type[RequestAuthenticator] = RequestAuthenticator

    def get_authenticator(self) -> RequestAuthenticator:
        """The framework-neutral authenticator; audit signals name this class as their ``sender``.

        Built once per class and realm, then shared by every request (DRF builds this class anew
        for each one): an authenticator holds configuration only, never per-request state.
        """
        key = (self.authenticator_class, self.www_authenticate_realm, type(self))
        authenticator = _authenticators.get(key)
        if authenticator is None:
            authenticator = _authenticators[key] = self.authenticator_class(self.www_authenticate_realm, type(self))
        return authenticator

    def authenticate(self, request: Request) -> tuple[Any, ValidatedToken] | None:
        # The shared authenticator looked up inline: DRF builds this class anew for every request.
        authenticator = _authenticators.get((self.authenticator_class, self.www_authenticate_realm, type(self)))
        if authenticator is None:
            authenticator = self.get_authenticator()
        validated = authenticator.authenticate(request)
        if validated is None:
            return None
        return self.get_user(request, validated), validated

    def get_user(self, request: Request, validated: ValidatedToken) -> Any:
        """DRF's ``request.user`` for a verified token: its :class:`~cobee_django.principal.ClientPrincipal`."""
        return validated.principal

    def authenticate_header(self, request: Request) -> str:
        return self.get_authenticator().challenge()
