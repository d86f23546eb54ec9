"""Views of an API secured by access tokens: plain Django views (sync and async) and DRF generic views.

Plain Django views (no DRF) get the guarantees DRF views get from :mod:`cobee_django.permissions`:

- :func:`token_required`, a decorator for function views, sync or ``async def``;
- :class:`TokenRequiredMixin`, for class-based views (``django.views.View`` subclasses), sync or async.

Both verify the ``Authorization: Bearer`` token (:mod:`cobee_django.credentials`), bind the tenant it
grants for the whole view (unbound afterwards, exceptions included), check the ``companyId`` /
``corporationId`` of the path and the scopes, and answer as RFC 6750 says, with constant JSON bodies:

======================================================  ======  =====================================
Request                                                 Status  Body ``detail`` / challenge
======================================================  ======  =====================================
no credentials                                          401     ``Bearer realm="api"``
a token that fails any rule                             401     ``error="invalid_token"``
two credentials, a token in the URL or form body        400     ``error="invalid_request"``
a token whose company is not registered (no tenant)     403     ``no_tenant``
a malformed company or corporation id in the path       404
a company or corporation the token does not reach       403
a token without the view's scopes                       403     ``error="insufficient_scope"``
no key set could ever be fetched from the issuer        503     ``Retry-After``
======================================================  ======  =====================================

For an async view the token is verified, and the tenant worked out, in a worker thread
(``sync_to_async``): both may do I/O (the key-set download, the membership query). The view itself
runs on the event loop with the tenant bound in its context, so the async ORM (``aget``, ``acount``,
``async for``) is scoped to it.

For DRF generic views nested under a company or a corporation: :class:`CompanyFromURLMixin` and
:class:`CorporationFromURLMixin`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings

from . import audit, bearer, conf, instrumentation, state
from .company_field import COMPANY_ATTNAME
from .credentials import RequestAuthenticator, error_response
from .exceptions import CobeeAPIException
from .membership import companies_of, tenant_for_principal
from .permissions import CanAccessCompany, CanAccessCorporation, HasTenant, _parse_url_id
from .principal import ClientPrincipal
from .state import Tenant
from .tokens import ValidatedToken
from .uuids import parse_uuid

__all__ = [
    "CompanyFromURLMixin",
    "CorporationFromURLMixin",
    "TokenGuard",
    "TokenRequiredMixin",
    "as_drf_validation_error",
    "token_required",
]

#: The 401 body for a request without credentials (DRF's own text, so every surface answers alike).
NOT_AUTHENTICATED_DETAIL = "Authentication credentials were not provided."
#: The 404 body for a malformed company or corporation id in the path (DRF's own text).
NOT_FOUND_DETAIL = "Not found."

V = TypeVar("V", bound=Callable[..., Any])


def _scopes(value: Iterable[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable) or not all(isinstance(s, str) for s in value):
        raise ImproperlyConfigured(f"{what} must be a list of scope strings, not {value!r}.")
    return frozenset(value)


def _refusal(status: int, detail: str, challenge: str | None = None) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    if challenge is not None:
        response["WWW-Authenticate"] = challenge
    return response


class TokenGuard:
    """The checks of :func:`token_required` and :class:`TokenRequiredMixin`, in DRF's order.

    1. The credential (:class:`~cobee_django.credentials.RequestAuthenticator`): 401/400/503.
    2. The tenant the token grants (``HasTenant``): 403 without one.
    3. The ``companyId`` / ``corporationId`` of the path, when the URL has them (``CanAccessCompany``,
       ``CanAccessCorporation``): 404 when malformed, 403 when not reachable.
    4. The scopes (``HasScopes``): ``scopes`` for every method, plus ``read_scopes`` (GET, HEAD,
       OPTIONS) or ``write_scopes`` (other methods); 403 ``insufficient_scope`` when one is missing.

    :meth:`admit` answers the refusal (a constant JSON response) or the :class:`~cobee_django.state.Tenant`
    to bind around the view; on success ``request.user`` is the token's ``ClientPrincipal`` and
    ``request.auth`` the ``ValidatedToken``, as in a DRF view.
    """

    def __init__(
        self,
        *,
        scopes: Iterable[str] | None = None,
        read_scopes: Iterable[str] | None = None,
        write_scopes: Iterable[str] | None = None,
        realm: str | None = None,
        company_url_kwarg: str | None = None,
        corporation_url_kwarg: str | None = None,
        sender: Any = None,
        authenticator_class: type[RequestAuthenticator] = RequestAuthenticator,
    ) -> None:
        self.scopes = _scopes(scopes, "scopes") or frozenset()
        self.read_scopes = _scopes(read_scopes, "read_scopes") or frozenset()
        self.write_scopes = _scopes(write_scopes, "write_scopes") or frozenset()
        self.realm = realm
        self.company_url_kwarg = company_url_kwarg
        self.corporation_url_kwarg = corporation_url_kwarg
        self.sender = sender if sender is not None else type(self)
        self.authenticator_class = authenticator_class

    def required_scopes(self, method: str) -> frozenset[str]:
        """The scopes a request with HTTP ``method`` needs."""
        specific = self.read_scopes if method.upper() in SAFE_METHODS else self.write_scopes
        return self.scopes | specific

    def admit(self, request: HttpRequest, url_kwargs: dict[str, Any]) -> Tenant | HttpResponseBase:
        """Run every check: the tenant to bind, or the response that refuses the request."""
        try:
            validated = self.authenticator_class(self.realm, self.sender).authenticate(request)
        except CobeeAPIException as exc:
            return error_response(exc)
        if validated is None:
            return self.finish(_refusal(401, NOT_AUTHENTICATED_DETAIL, bearer.challenge(self.realm)))
        principal = validated.principal
        request.user = principal  # type: ignore[assignment]
        request.auth = validated  # type: ignore[attr-defined]
        tenant = self.get_tenant(request, validated)
        if tenant is None:
            audit.deny(request, audit.Denial.NO_TENANT)
            return self.finish(_refusal(403, str(HasTenant.message)))
        refusal = self.check(request, url_kwargs, tenant, validated)
        if refusal is not None:
            return self.finish(refusal)
        return tenant

    async def aadmit(self, request: HttpRequest, url_kwargs: dict[str, Any]) -> Tenant | HttpResponseBase:
        """:meth:`admit` from async code: it runs in a worker thread (key-set download, membership query)."""
        return await sync_to_async(self.admit)(request, url_kwargs)

    @instrumentation.traced("cobee_django.bind_tenant")
    def get_tenant(self, request: HttpRequest, validated: ValidatedToken) -> Tenant | None:
        """The tenant the token grants (its company, or its corporation's companies)."""
        principal: ClientPrincipal = validated.principal
        tenant = tenant_for_principal(principal)
        audit.tenant_bound(self.sender, request, tenant, principal)
        return tenant

    def check(
        self, request: HttpRequest, url_kwargs: dict[str, Any], tenant: Tenant, validated: ValidatedToken
    ) -> HttpResponseBase | None:
        """The refusal of a request whose token grants ``tenant``, or ``None`` to let it through."""
        settings = conf.get_settings()
        company_kwarg = self.company_url_kwarg or settings.company_url_kwarg
        if company_kwarg in url_kwargs:
            company_id = parse_uuid(url_kwargs[company_kwarg])
            if company_id is None:
                return _refusal(404, NOT_FOUND_DETAIL)
            # A caller reaches only its own companies: the path is client input like the body.
            if company_id not in tenant.company_ids:
                audit.deny(request, audit.Denial.COMPANY_NOT_REACHABLE)
                return _refusal(403, str(CanAccessCompany.message))
        corporation_kwarg = self.corporation_url_kwarg or settings.corporation_url_kwarg
        if corporation_kwarg in url_kwargs:
            corporation_id = parse_uuid(url_kwargs[corporation_kwarg])
            if corporation_id is None:
                return _refusal(404, NOT_FOUND_DETAIL)
            # Only a corporation-wide token reaches a corporation, and only its own.
            if tenant.corporation_id != corporation_id:
                audit.deny(request, audit.Denial.CORPORATION_NOT_REACHABLE)
                return _refusal(403, str(CanAccessCorporation.message))
        required = self.required_scopes(request.method or "GET")
        # Scopes are what the client was granted for this API; a token without them reads nothing.
        if not required <= validated.scopes:
            audit.deny(request, audit.Denial.INSUFFICIENT_SCOPE)
            challenge = bearer.challenge(
                self.realm, bearer.INSUFFICIENT_SCOPE, bearer.INSUFFICIENT_SCOPE_DESCRIPTION, sorted(required)
            )
            return _refusal(403, bearer.INSUFFICIENT_SCOPE_DESCRIPTION, challenge)
        return None

    def finish(self, response: HttpResponseBase) -> HttpResponseBase:
        """Keep shared caches out of every answer of a token-authenticated view, refusals included."""
        patch_cache_control(response, private=True)
        patch_vary_headers(response, ["Authorization"])
        return response


def token_required(
    view: V | None = None,
    *,
    scopes: Iterable[str] | None = None,
    read_scopes: Iterable[str] | None = None,
    write_scopes: Iterable[str] | None = None,
    realm: str | None = None,
    company_url_kwarg: str | None = None,
    corporation_url_kwarg: str | None = None,
) -> Any:
    """Secure a function view, sync or ``async def``, with the access token (see :class:`TokenGuard`).

    ``@token_required`` or ``@token_required(scopes=[...], read_scopes=[...], write_scopes=[...])``.
    The tenant is bound for the whole view and unbound afterwards, exceptions included.
    """

    def decorate(function: V) -> V:
        guard = TokenGuard(
            scopes=scopes,
            read_scopes=read_scopes,
            write_scopes=write_scopes,
            realm=realm,
            company_url_kwarg=company_url_kwarg,
            corporation_url_kwarg=corporation_url_kwarg,
            sender=function,
        )
        if iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
                admitted = await guard.aadmit(request, kwargs)
                if isinstance(admitted, HttpResponseBase):
                    return admitted
                with state.for_tenant(admitted):
                    response: HttpResponseBase = await function(request, *args, **kwargs)
                return guard.finish(response)

            async_view.token_guard = guard  # type: ignore[attr-defined]
            # A bearer token is not sent by browsers on their own, so no cross-site request carries it:
            # Django's CSRF check (meant for cookies) would only refuse API clients (DRF exempts too).
            # The attribute, not csrf_exempt(): Django 4.2's wrapper would hide the coroutine function.
            async_view.csrf_exempt = True  # type: ignore[attr-defined]
            return async_view  # type: ignore[return-value]

        @functools.wraps(function)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            admitted = guard.admit(request, kwargs)
            if isinstance(admitted, HttpResponseBase):
                return admitted
            with state.for_tenant(admitted):
                response: HttpResponseBase = function(request, *args, **kwargs)
            return guard.finish(response)

        sync_view.token_guard = guard  # type: ignore[attr-defined]
        sync_view.csrf_exempt = True  # type: ignore[attr-defined]
        return sync_view  # type: ignore[return-value]

    return decorate(view) if view is not None else decorate


class TokenRequiredMixin:
    """For Django class-based views (``View`` subclasses, sync or async handlers): the checks of
    :class:`TokenGuard` before ``dispatch``, and the tenant bound around it.

    Knobs (class attributes): ``required_scopes``, ``required_read_scopes``, ``required_write_scopes``
    (as for DRF's ``HasScopes``; all optional), ``www_authenticate_realm``, ``company_url_kwarg``,
    ``corporation_url_kwarg``; or override :meth:`get_token_guard`. Put it first in the bases.
    """

    required_scopes: Iterable[str] | None = None
    required_read_scopes: Iterable[str] | None = None
    required_write_scopes: Iterable[str] | None = None
    www_authenticate_realm: str | None = None
    company_url_kwarg: str | None = None
    corporation_url_kwarg: str | None = None

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Bearer tokens are not cookies: no CSRF check, as for DRF's APIView and token_required.
        view = super().as_view(**initkwargs)  # type: ignore[misc]
        view.csrf_exempt = True
        return view

    def get_token_guard(self) -> TokenGuard:
        return TokenGuard(
            scopes=self.required_scopes,
            read_scopes=self.required_read_scopes,
            write_scopes=self.required_write_scopes,
            realm=self.www_authenticate_realm,
            company_url_kwarg=self.company_url_kwarg,
            corporation_url_kwarg=self.corporation_url_kwarg,
            sender=type(self),
        )

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        guard = self.get_token_guard()
        if getattr(type(self), "view_is_async", False):
            return self._adispatch(guard, request, args, kwargs)
        admitted = guard.admit(request, kwargs)
        if isinstance(admitted, HttpResponseBase):
            return admitted
        with state.for_tenant(admitted):
            response: HttpResponseBase = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return guard.finish(response)

    async def _adispatch(
        self, guard: TokenGuard, request: HttpRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HttpResponseBase:
        admitted = await guard.aadmit(request, kwargs)
        if isinstance(admitted, HttpResponseBase):
            return admitted
        with state.for_tenant(admitted):
            response: HttpResponseBase = await super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return guard.finish(response)


def as_drf_validation_error(exc: DjangoValidationError) -> ValidationError:
    """A model's ``ValidationError`` (e.g. a per-company duplicate) as DRF's 400."""
    if hasattr(exc, "error_dict"):
        detail: Any = {
            (api_settings.NON_FIELD_ERRORS_KEY if key == "__all__" else key): [str(m) for e in errors for m in e]
            for key, errors in exc.error_dict.items()
        }
    else:
        detail = {api_settings.NON_FIELD_ERRORS_KEY: list(exc.messages)}
    return ValidationError(detail)


class CompanyFromURLMixin:
    """For generic views under ``.../{companyId}/...``: list that company's rows, create rows in it.

    Pair it with ``CanAccessCompany`` (which answers 403 for an unreachable company). The queryset
    is narrowed to the URL's company, so a corporation-wide client listing one company sees that
    company only; ``perform_create`` assigns the URL's company whatever the body says, and model
    validation errors (per-company unique constraints) become 400 answers.
    """

    #: The URL keyword holding the company id; ``None`` uses ``COMPANY_URL_KWARG``.
    company_url_kwarg: str | None = None
    kwargs: dict[str, Any]

    def get_company_url_kwarg(self) -> str:
        return self.company_url_kwarg or conf.get_settings().company_url_kwarg

    def get_url_company_id(self) -> uuid.UUID:
        """The company id in the URL (404 when malformed)."""
        return _parse_url_id(self, self.get_company_url_kwarg())  # type: ignore[arg-type]

    def get_queryset(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset()  # type: ignore[misc]
        narrowed: QuerySet[Any] = queryset.filter(**{COMPANY_ATTNAME: self.get_url_company_id()})
        return narrowed

    def perform_create(self, serializer: BaseSerializer[Any]) -> None:
        from .models import Company

        company = Company.objects.filter(pk=self.get_url_company_id()).first()
        if company is None:
            raise ValidationError({"company": ["This company is not registered."]})
        try:
            serializer.save(company=company)
        except DjangoValidationError as exc:
            raise as_drf_validation_error(exc) from None

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        try:
            serializer.save()
        except DjangoValidationError as exc:
            raise as_drf_validation_error(exc) from None


class CorporationFromURLMixin:
    """For views under ``.../corporations/{corporationId}/...``: the corporation's companies and rows.

    Pair it with ``CanAccessCorporation`` (403 for another corporation). :meth:`get_corporation_companies`
    lists the corporation's companies the caller reaches (ordered by name), :meth:`get_queryset` (for
    generic views) narrows a tenant model's rows to them, and :meth:`group_by_company` builds the usual
    corporation-wide report: one entry per company, each with its rows, companies without rows included.
    """

    #: The URL keyword holding the corporation id; ``None`` uses ``CORPORATION_URL_KWARG``.
    corporation_url_kwarg: str | None = None
    kwargs: dict[str, Any]

    def get_corporation_url_kwarg(self) -> str:
        return self.corporation_url_kwarg or conf.get_settings().corporation_url_kwarg

    def get_url_corporation_id(self) -> uuid.UUID:
        """The corporation id in the URL (404 when malformed)."""
        return _parse_url_id(self, self.get_corporation_url_kwarg())  # type: ignore[arg-type]

    def get_corporation_company_ids(self) -> frozenset[uuid.UUID]:
        """The ids of the URL corporation's companies that the bound tenant reaches (none for another's)."""
        corporation_id = self.get_url_corporation_id()
        tenant = state.require_tenant()
        # The tenant's own corporation only: a company of another corporation never joins the report.
        if tenant.corporation_id != corporation_id:
            return frozenset()
        return tenant.company_ids & companies_of(corporation_id)

    def get_corporation_companies(self) -> QuerySet[Any]:
        """The corporation's reachable companies (``Company`` rows), ordered by name then id."""
        from .models import Company

        companies: QuerySet[Any] = Company.objects.filter(
            corporation_id=self.get_url_corporation_id(), id__in=self.get_corporation_company_ids()
        ).order_by("name", "id")
        return companies

    def get_queryset(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset()  # type: ignore[misc]
        narrowed: QuerySet[Any] = queryset.filter(**{f"{COMPANY_ATTNAME}__in": self.get_corporation_company_ids()})
        return narrowed

    def group_by_company(self, rows: Iterable[Any]) -> list[tuple[Any, list[Any]]]:
        """``[(company, its rows), ...]`` for every company of :meth:`get_corporation_companies`, in order.

        Rows keep their order; a row of a company outside the report (there are none when ``rows``
        comes from :meth:`get_queryset`) is left out rather than shown under the wrong company.
        """
        companies = list(self.get_corporation_companies())
        grouped: dict[uuid.UUID, list[Any]] = {company.pk: [] for company in companies}
        for row in rows:
            bucket = grouped.get(getattr(row, COMPANY_ATTNAME))
            if bucket is not None:
                bucket.append(row)
        return [(company, grouped[company.pk]) for company in companies]
