"""OpenAPI for drf-spectacular: the security schemes of ``JWTAuthentication`` and each view's scopes.

Imported by the app when ``drf_spectacular`` is in ``INSTALLED_APPS`` (``pip install cobee-django[openapi]``);
subclassing drf-spectacular's ``OpenApiAuthenticationExtension`` registers it. The schema then
declares two schemes for ``JWTAuthentication``:

- ``oauth2``: OAuth2 client credentials with the token URL (``OPENAPI_TOKEN_URL``, default
  ``{ISSUER}oauth/token``) and every scope the API's views require;
- ``bearerJWT``: HTTP bearer with ``bearerFormat: JWT``, for clients that already hold a token
  (left out when ``DPOP_MODE`` is ``required``);
- ``dpopJWT``: the HTTP ``DPoP`` scheme (RFC 9449) when ``DPOP_MODE`` is not ``disabled``;

and each operation's security lists, under ``oauth2``, the scopes its ``HasScopes`` permission
requires for that method (``required_scopes`` plus ``required_read_scopes`` or
``required_write_scopes``). Permissions composed with ``&`` add up; with ``|`` they are alternatives.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.drainage import warn
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import AND, NOT, OR
from rest_framework.views import APIView

from ..conf import get_settings
from ..permissions import HasScopes

__all__ = ["JWTAuthenticationScheme", "required_scopes"]

#: One scope set per alternative way to satisfy the view (``[frozenset()]``: no scope needed).
_ScopeAlternatives = list[frozenset[str]]

OAUTH2_DESCRIPTION = (
    "Machine-to-machine access: obtain a token with the client-credentials grant (client id, client "
    "secret and the API's audience) and send it as `Authorization: Bearer <token>`."
)
BEARER_DESCRIPTION = "An access token issued for this API, sent as `Authorization: Bearer <token>`."
DPOP_DESCRIPTION = (
    "A DPoP-bound access token (RFC 9449), sent as `Authorization: DPoP <token>` with a `DPoP` header "
    "holding a fresh proof signed by the token's key for this method and URL ({algs})."
)


def _alternatives(permission: Any, view: APIView, method: str) -> _ScopeAlternatives:
    if isinstance(permission, HasScopes):
        return [permission.required_scopes(view, method)]
    # DRF's composed permissions keep their operands as op1 and op2 (untyped in the stubs).
    operands: list[Any] = [getattr(permission, "op1", None), getattr(permission, "op2", None)]
    if isinstance(permission, AND):
        return _all_of(operands, view, method)
    if isinstance(permission, OR):
        return _unique(_alternatives(operands[0], view, method) + _alternatives(operands[1], view, method))
    if isinstance(permission, NOT):
        return [frozenset()]  # "lacks the scope" cannot be asked of a token
    return [frozenset()]


def _all_of(permissions: Iterable[Any], view: APIView, method: str) -> _ScopeAlternatives:
    combined: _ScopeAlternatives = [frozenset()]
    for permission in permissions:
        options = _alternatives(permission, view, method)
        combined = _unique([left | right for left, right in itertools.product(combined, options)])
    return combined


def _unique(alternatives: _ScopeAlternatives) -> _ScopeAlternatives:
    return list(dict.fromkeys(alternatives))


def required_scopes(view: APIView, method: str) -> _ScopeAlternatives:
    """The scope sets that satisfy ``view``'s permissions for ``method`` (each is one alternative)."""
    permissions: list[Any] = list(view.get_permissions())
    return _all_of(permissions, view, method.upper())


# Scopes seen during one schema generation, keyed by its component registry: the scheme's
# ``scopes`` map is registered once but must list the scopes of every operation.
_scopes_seen: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """drf-spectacular extension for :class:`~cobee_django.authentication.JWTAuthentication`.

    Knobs for subclasses (raise ``priority`` above 0 to take over): ``oauth2_name``,
    ``bearer_name``, :meth:`get_token_url`, :meth:`get_scope_description`.
    """

    target_class = "cobee_django.authentication.JWTAuthentication"
    match_subclasses = True
    priority = 0
    oauth2_name = "oauth2"
    bearer_name = "bearerJWT"
    dpop_name = "dpopJWT"
    name = [oauth2_name, bearer_name]

    def __init__(self, target: Any) -> None:
        super().__init__(target)  # type: ignore[no-untyped-call]
        settings = get_settings()
        self.dpop_mode = settings.dpop_mode
        self.dpop_algorithms = settings.dpop_algorithms
        names = [self.oauth2_name]
        if self.dpop_mode != "required":
            names.append(self.bearer_name)
        if self.dpop_mode != "disabled":
            names.append(self.dpop_name)
        self.name = names

    def get_token_url(self) -> str:
        """Where clients obtain tokens: ``OPENAPI_TOKEN_URL``, else ``{ISSUER}oauth/token``."""
        settings = get_settings()
        if settings.openapi_token_url:
            return settings.openapi_token_url
        if not settings.issuers:
            return "/oauth/token"
        return settings.issuers[0].issuer.rstrip("/") + "/oauth/token"

    def get_scope_description(self, scope: str) -> str:
        """The text shown next to ``scope`` in the OAuth2 flow (default: the scope itself)."""
        return scope

    def _operation_scopes(self, auto_schema: AutoSchema) -> _ScopeAlternatives:
        try:
            return required_scopes(auto_schema.view, auto_schema.method)
        except ImproperlyConfigured as exc:
            warn(f"cobee_django: {exc} The operation is documented without scopes.")
            return [frozenset()]

    def _remember(self, auto_schema: AutoSchema, alternatives: _ScopeAlternatives) -> dict[str, str]:
        seen = _scopes_seen.setdefault(auto_schema.registry, {})
        for scope in sorted(set().union(*alternatives)):
            seen.setdefault(scope, self.get_scope_description(scope))
        return seen

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[str]]]:
        alternatives = self._operation_scopes(auto_schema)
        self._remember(auto_schema, alternatives)
        requirements: list[dict[str, list[str]]] = [{self.oauth2_name: sorted(scopes)} for scopes in alternatives]
        if self.dpop_mode != "required":
            requirements.append({self.bearer_name: []})
        if self.dpop_mode != "disabled":
            requirements.append({self.dpop_name: []})
        return requirements

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        scopes = self._remember(auto_schema, self._operation_scopes(auto_schema))
        definitions: list[dict[str, Any]] = [
            {
                "type": "oauth2",
                "description": OAUTH2_DESCRIPTION,
                # The same dict object for the whole generation: later operations add their scopes.
                "flows": {"clientCredentials": {"tokenUrl": self.get_token_url(), "scopes": scopes}},
            },
        ]
        if self.dpop_mode != "required":
            definitions.append(
                {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": BEARER_DESCRIPTION}
            )
        if self.dpop_mode != "disabled":
            algs = ", ".join(sorted(self.dpop_algorithms))
            definitions.append({"type": "http", "scheme": "DPoP", "description": DPOP_DESCRIPTION.format(algs=algs)})
        return definitions
