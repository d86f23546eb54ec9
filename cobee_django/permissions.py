"""DRF permission classes for tenants and scopes; composable with ``&``, ``|`` and ``~``.

- :class:`HasTenant`: a tenant is bound for the request (and, per object, the object is its).
- :class:`CanAccessCompany`: the company named in the URL is one the tenant reaches.
- :class:`CanAccessCorporation`: the corporation named in the URL is the tenant's corporation.
- :class:`HasScopes`: the token holds the scopes the view requires.

They answer ``True``/``False`` so that they compose; the reasons travel in ``message``/``code``.
Composed with ``&``, ``|`` or ``~``, the composition carries the ``message``/``code`` of the operand that
refused, so a refusal has one 403 body whether the view lists its permissions or ``&``-s them.
Object-level checks raise ``NotFound`` instead: another tenant's object does not exist for the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import permissions as drf
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from . import audit, bearer, conf, state
from .company_field import COMPANY_ATTNAME, is_tenant_model
from .state import Tenant
from .uuids import parse_uuid

__all__ = ["CanAccessCompany", "CanAccessCorporation", "HasScopes", "HasTenant", "TenantPermission"]


def _parse_url_id(view: APIView, kwarg: str) -> uuid.UUID:
    """The UUID in the URL keyword ``kwarg``; a malformed or non-canonical value is a 404 (never a 500)."""
    kwargs = getattr(view, "kwargs", None) or {}
    if kwarg not in kwargs:
        raise ImproperlyConfigured(
            f"{type(view).__name__} has no URL keyword {kwarg!r}; check the URL pattern or the "
            "COMPANY_URL_KWARG / CORPORATION_URL_KWARG setting."
        )
    parsed = parse_uuid(kwargs[kwarg])  # the one id rule, the tokens' (cobee_django.uuids)
    if parsed is None:
        raise NotFound()
    return parsed


def _check_object(request: Request, tenant: Tenant | None, obj: Any) -> None:
    # Another tenant's object must look exactly like a missing one.
    if is_tenant_model(type(obj)) and (tenant is None or not tenant.reaches(getattr(obj, COMPANY_ATTNAME))):
        audit.deny(request, audit.Denial.OBJECT_NOT_REACHABLE)
        raise NotFound()


# --- composition: the refusing operand's message and code ------------------------------------------


class _Refusal:
    """The ``message``/``code`` DRF reads of a composed permission: those of the operand that refused."""

    refused: Any = None
    op1: Any
    op2: Any

    @property
    def message(self) -> Any:
        return getattr(self.refused, "message", None)

    @property
    def code(self) -> Any:
        return getattr(self.refused, "code", None)


class AND(_Refusal, drf.AND):
    def has_permission(self, request: Request, view: APIView) -> bool:
        for operand in (self.op1, self.op2):
            if not operand.has_permission(request, view):
                self.refused = operand
                return False
        return True


class OR(_Refusal, drf.OR):
    def has_permission(self, request: Request, view: APIView) -> bool:
        if self.op1.has_permission(request, view):
            return True
        if self.op2.has_permission(request, view):
            return True
        self.refused = self.op1  # both refused: the first one's reason, as the list style would give
        return False


class NOT(_Refusal, drf.NOT):
    """``~P`` refuses when ``P`` accepts: there is no reason of ``P``'s to give (DRF's default body)."""


class _Composable(drf.OperationHolderMixin):
    """``&``, ``|`` and ``~`` building the operators above, for our classes and what they compose into."""

    def __and__(self, other: Any) -> Any:
        return _compose(AND, self, other)

    def __or__(self, other: Any) -> Any:
        return _compose(OR, self, other)

    def __rand__(self, other: Any) -> Any:
        return _compose(AND, other, self)

    def __ror__(self, other: Any) -> Any:
        return _compose(OR, other, self)

    def __invert__(self) -> Any:
        return _compose(NOT, self)


class _OperandHolder(_Composable, drf.OperandHolder):
    pass


class _SingleOperandHolder(_Composable, drf.SingleOperandHolder):
    pass


def _compose(operator: Any, *operands: Any) -> Any:
    holder: Any = _OperandHolder if len(operands) == 2 else _SingleOperandHolder
    return holder(operator, *operands)


class _PermissionMetaclass(_Composable, drf.BasePermissionMetaclass):
    pass


class TenantPermission(BasePermission, metaclass=_PermissionMetaclass):
    """Base of the package's permission classes: they compose keeping their refusal's message."""


# --- the permission classes --------------------------------------------------------------------------


class HasTenant(TenantPermission):
    """The request has a bound tenant; an object outside it is a 404."""

    message = "No tenant is bound to this request."
    code = "no_tenant"

    def has_permission(self, request: Request, view: APIView) -> bool:
        if state.tenant_or_none() is not None:
            return True
        audit.deny(request, audit.Denial.NO_TENANT)
        return False

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        _check_object(request, state.tenant_or_none(), obj)
        return True


class _URLIdPermission(TenantPermission):
    """The id in one URL keyword is reachable by the bound tenant: 403 if not, 404 if malformed."""

    denial: audit.Denial

    def get_url_kwarg(self) -> str:
        """The URL keyword holding the id (a setting by default)."""
        raise NotImplementedError

    def reaches(self, tenant: Tenant, url_id: uuid.UUID) -> bool:
        """Whether ``tenant`` reaches the id named in the URL."""
        raise NotImplementedError

    def has_permission(self, request: Request, view: APIView) -> bool:
        url_id = _parse_url_id(view, self.get_url_kwarg())
        tenant = state.tenant_or_none()
        if tenant is not None and self.reaches(tenant, url_id):
            return True
        audit.deny(request, self.denial)
        return False

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        _check_object(request, state.tenant_or_none(), obj)
        return True


class CanAccessCompany(_URLIdPermission):
    """The company in the URL (``COMPANY_URL_KWARG``, default ``companyId``) is reachable: 403 if not."""

    message = "This company is not one your credentials reach."
    code = "company_not_reachable"
    denial = audit.Denial.COMPANY_NOT_REACHABLE

    def get_url_kwarg(self) -> str:
        return conf.get_settings().company_url_kwarg

    def reaches(self, tenant: Tenant, url_id: uuid.UUID) -> bool:
        return url_id in tenant.company_ids

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        super().has_object_permission(request, view, obj)
        # A row of another reachable company is not under this URL's company.
        if is_tenant_model(type(obj)) and getattr(obj, COMPANY_ATTNAME) != _parse_url_id(view, self.get_url_kwarg()):
            audit.deny(request, audit.Denial.OBJECT_NOT_REACHABLE)
            raise NotFound()
        return True


class CanAccessCorporation(_URLIdPermission):
    """The corporation in the URL (``CORPORATION_URL_KWARG``) is the tenant's corporation: 403 if not."""

    message = "This corporation is not the one your credentials reach."
    code = "corporation_not_reachable"
    denial = audit.Denial.CORPORATION_NOT_REACHABLE

    def get_url_kwarg(self) -> str:
        return conf.get_settings().corporation_url_kwarg

    def reaches(self, tenant: Tenant, url_id: uuid.UUID) -> bool:
        return tenant.corporation_id == url_id


class HasScopes(TenantPermission):
    """The access token holds the view's scopes; a 403 with RFC 6750's ``insufficient_scope`` if not.

    The view declares ``required_scopes`` (needed for every method), and/or
    ``required_read_scopes`` (GET, HEAD, OPTIONS) and ``required_write_scopes`` (other methods).
    A view that declares none of the attributes that apply is a configuration error.
    The ``WWW-Authenticate`` challenge is added to the 403 by ``TenantMiddleware``
    (:func:`cobee_django.bearer.add_insufficient_scope_challenge`).
    """

    message = bearer.INSUFFICIENT_SCOPE_DESCRIPTION
    code = bearer.INSUFFICIENT_SCOPE

    def required_scopes(self, view: APIView, method: str) -> frozenset[str]:
        """The scopes ``view`` requires for the HTTP ``method`` (what the OpenAPI document lists)."""
        method_attr = "required_read_scopes" if method.upper() in SAFE_METHODS else "required_write_scopes"
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
            # A string is iterable too: "read:a" would otherwise require the scopes "r", "e", "a"...
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise ImproperlyConfigured(f"{type(view).__name__}'s required scopes must be a list of strings.")
            scopes.update(value)
        return frozenset(scopes)

    def get_required_scopes(self, request: Request, view: APIView) -> frozenset[str]:
        """The scopes this request needs (by default :meth:`required_scopes` for its method)."""
        return self.required_scopes(view, request.method or "GET")

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
        bearer.remember_insufficient_scope(request._request, required)
        audit.deny(request, audit.Denial.INSUFFICIENT_SCOPE)
        return False
