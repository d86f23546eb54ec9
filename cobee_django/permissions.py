"""DRF permission classes for tenants and scopes; composable with ``&``, ``|`` and ``~``.

- :class:`HasTenant`: a tenant is bound for the request (and, per object, the object is its).
- :class:`CanAccessCompany`: the company named in the URL is one the tenant reaches.
- :class:`CanAccessCorporation`: the corporation named in the URL is the tenant's corporation.
- :class:`HasScopes`: the token holds the scopes the view requires.

They answer ``True``/``False`` so that they compose; the reasons travel in ``message``/``code``.
Object-level checks raise ``NotFound`` instead: another tenant's object does not exist for the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from . import audit, conf, state
from .authentication import INSUFFICIENT_SCOPE_DESCRIPTION
from .guards import COMPANY_ATTNAME
from .managers import is_tenant_model
from .middleware import INSUFFICIENT_SCOPE_ATTR
from .state import Tenant


def parse_url_id(view: APIView, kwarg: str) -> uuid.UUID:
    """The UUID in the URL keyword ``kwarg``; a malformed value is a 404 (never a 500)."""
    kwargs = getattr(view, "kwargs", None) or {}
    if kwarg not in kwargs:
        raise ImproperlyConfigured(
            f"{type(view).__name__} has no URL keyword {kwarg!r}; check the URL pattern or the "
            "COMPANY_URL_KWARG / CORPORATION_URL_KWARG setting."
        )
    value = kwargs[kwarg]
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound() from None


def _check_object(request: Request, tenant: Tenant | None, obj: Any) -> None:
    # Another tenant's object must look exactly like a missing one.
    if is_tenant_model(type(obj)) and (tenant is None or not tenant.reaches(getattr(obj, COMPANY_ATTNAME))):
        audit.deny(request, audit.Denial.OBJECT_NOT_REACHABLE)
        raise NotFound()


class HasTenant(BasePermission):
    """The request has a bound tenant; an object outside it is a 404."""

    message = "No tenant is bound to this request."
    code = "no_tenant"

    def has_permission(self, request: Request, view: APIView) -> bool:
        if state.get_tenant() is not None:
            return True
        audit.deny(request, audit.Denial.NO_TENANT)
        return False

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        _check_object(request, state.get_tenant(), obj)
        return True


class CanAccessCompany(BasePermission):
    """The company in the URL (``COMPANY_URL_KWARG``, default ``companyId``) is reachable: 403 if not."""

    message = "This company is not one your credentials reach."
    code = "company_not_reachable"

    def get_url_kwarg(self) -> str:
        return conf.get_settings().company_url_kwarg

    def has_permission(self, request: Request, view: APIView) -> bool:
        company_id = parse_url_id(view, self.get_url_kwarg())
        tenant = state.get_tenant()
        if tenant is not None and company_id in tenant.company_ids:
            return True
        audit.deny(request, audit.Denial.COMPANY_NOT_REACHABLE)
        return False

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        _check_object(request, state.get_tenant(), obj)
        if is_tenant_model(type(obj)) and getattr(obj, COMPANY_ATTNAME) != parse_url_id(view, self.get_url_kwarg()):
            audit.deny(request, audit.Denial.OBJECT_NOT_REACHABLE)
            raise NotFound()
        return True


class CanAccessCorporation(BasePermission):
    """The corporation in the URL (``CORPORATION_URL_KWARG``) is the tenant's corporation: 403 if not."""

    message = "This corporation is not the one your credentials reach."
    code = "corporation_not_reachable"

    def get_url_kwarg(self) -> str:
        return conf.get_settings().corporation_url_kwarg

    def has_permission(self, request: Request, view: APIView) -> bool:
        corporation_id = parse_url_id(view, self.get_url_kwarg())
        tenant = state.get_tenant()
        if tenant is not None and tenant.corporation_id == corporation_id:
            return True
        audit.deny(request, audit.Denial.CORPORATION_NOT_REACHABLE)
        return False

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        _check_object(request, state.get_tenant(), obj)
        return True


class HasScopes(BasePermission):
    """The access token holds the view's scopes; a 403 with RFC 6750's ``insufficient_scope`` if not.

    The view declares ``required_scopes`` (needed for every method), and/or
    ``required_read_scopes`` (GET, HEAD, OPTIONS) and ``required_write_scopes`` (other methods).
    A view that declares none of the attributes that apply is a configuration error.
    The ``WWW-Authenticate`` challenge is added by ``TenantMiddleware`` to the 403 response.
    """

    message = INSUFFICIENT_SCOPE_DESCRIPTION
    code = "insufficient_scope"

    def get_required_scopes(self, request: Request, view: APIView) -> frozenset[str]:
        """The scopes this request needs, from the view's attributes."""
        method_attr = "required_read_scopes" if request.method in SAFE_METHODS else "required_write_scopes"
        common = getattr(view, "required_scopes", None)
        specific = getattr(view, method_attr, None)
        if common is None and specific is None:
            raise ImproperlyConfigured(
                f"{type(view).__name__} uses HasScopes but defines neither required_scopes nor {method_attr}."
            )
        scopes: set[str] = set()
        for value in (common, specific):
            if value is None:
                continue
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ImproperlyConfigured(f"{type(view).__name__}'s required scopes must be a list of strings.")
            scopes.update(value)
        return frozenset(scopes)

    def get_granted_scopes(self, request: Request) -> frozenset[str]:
        """The scopes the caller holds: the verified token's, none for other users."""
        scopes = getattr(request.user, "scopes", None)
        return scopes if isinstance(scopes, frozenset) else frozenset()

    def has_permission(self, request: Request, view: APIView) -> bool:
        required = self.get_required_scopes(request, view)
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return False  # DRF answers 401 with the authentication challenge
        if required <= self.get_granted_scopes(request):
            return True
        setattr(request._request, INSUFFICIENT_SCOPE_ATTR, tuple(sorted(required)))
        audit.deny(request, audit.Denial.INSUFFICIENT_SCOPE)
        return False
