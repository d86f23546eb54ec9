"""Binds each request's tenant, and always unbinds it, under WSGI and ASGI.

DRF authenticates inside the view, after every middleware has run, so the tenant cannot be
computed here up front. The middleware binds a per-request resolver instead
(:func:`cobee_django.state.deferred`): the first time a tenant model is queried, it derives the
tenant from ``request.user`` as it is *then* (DRF stores the user it verified on the underlying
``HttpRequest``), and caches the answer for that user object. API clients (a
:class:`~cobee_django.principal.ClientPrincipal`) get the companies their token grants; other
users go through :meth:`TenantMiddleware.get_session_tenant`, the hook for staff sessions.

A database that cannot be reached in time (down, restarting, hung, a Citus shard moving: see
:mod:`cobee_django.db.faults`) is answered 503 with ``Retry-After`` and a constant body, JSON for API
requests, instead of Django's 500 page; the reason is logged and sent as ``database_unavailable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.log import log_response
from rest_framework.views import APIView

from . import audit, bearer, dpop, instrumentation, state
from .authentication import JWTAuthentication
from .conf import get_settings
from .db.faults import DatabaseFault, _classify
from .exceptions import DatabaseUnavailable, NoTenantBound, TenantViolation
from .membership import tenant_for_principal
from .principal import ClientPrincipal
from .state import Tenant
from .tokens import ValidatedToken

__all__ = ["TenantMiddleware"]

#: What a plain Django view (the admin, a form view) answers when it reads a tenant model with no
#: tenant bound: a 403 with this constant text (the developer's message goes to the log only).
NO_TENANT_PAGE_MESSAGE = "No company is selected for this page, so its data cannot be shown."

#: The constant body of the 503 answered when the database cannot be reached in time (as JSON
#: ``{"detail": ...}`` for API requests, as text otherwise).
DATABASE_UNAVAILABLE_MESSAGE = str(DatabaseUnavailable.default_detail)

#: What a plain Django view answers, with a 401, when it reads a tenant model for a caller it never
#: authenticated (no session, and nothing read the access token): what the view is missing.
UNAUTHENTICATED_VIEW_MESSAGE = (
    "This view reads company data but does not authenticate its caller: nothing read the access token. "
    "Decorate the view with cobee_django.views.token_required (or use TokenRequiredMixin)."
)

#: Deprecated: the attribute is private to :mod:`cobee_django.bearer` now.
INSUFFICIENT_SCOPE_ATTR = "cobee_insufficient_scope"

_UNSET: Any = object()


class _RequestTenant:
    """The resolver bound for one request: the tenant of ``request.user``, once per user object."""

    __slots__ = ("_middleware", "_request", "_resolving", "_tenant", "_user")

    def __init__(self, middleware: TenantMiddleware, request: HttpRequest) -> None:
        self._middleware = middleware
        self._request = request
        self._user: Any = _UNSET
        self._tenant: Tenant | None = None
        self._resolving = False

    def __call__(self) -> Tenant | None:
        if self._resolving:
            # Asked again by the statements that work the tenant out (membership records, made
            # while row-level security asks every statement for its tenant): they belong to none,
            # and resolving again would wait forever on the membership lock held by this thread.
            return None
        user = getattr(self._request, "user", None)
        if user is not self._user:
            # DRF replaces request.user when it authenticates; follow it.
            self._resolving = True
            try:
                self._tenant = self._middleware.get_tenant(self._request, user)
            finally:
                self._resolving = False
            self._user = user
            if self._tenant is not None:
                audit.tenant_bound(type(self._middleware), self._request, self._tenant, user)
        return self._tenant

    @property
    def tenant(self) -> Tenant | None:
        """The tenant resolved so far (``None`` if none was needed or none is reachable)."""
        return self._tenant


class TenantMiddleware:
    """Bind the request's tenant around the view; unbind on the way out, exceptions included."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        resolver = _RequestTenant(self, request)
        with state.deferred(resolver):
            response = self.get_response(request)
        audit.access_denied(type(self), request, response.status_code, resolver.tenant)
        return self.process_response(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        resolver = _RequestTenant(self, request)
        with state.deferred(resolver):
            response = await get_response(request)
        audit.access_denied(type(self), request, response.status_code, resolver.tenant)
        return self.process_response(request, response)

    @instrumentation.traced("cobee_django.bind_tenant")
    def get_tenant(self, request: HttpRequest, user: Any) -> Tenant | None:
        """The tenant of ``user``; ``None`` binds nothing (tenant models then refuse to run)."""
        if isinstance(user, ClientPrincipal):
            return self.get_client_tenant(request, user)
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return self.get_session_tenant(request, user)

    def get_client_tenant(self, request: HttpRequest, principal: ClientPrincipal) -> Tenant | None:
        """The companies a verified access token grants."""
        return tenant_for_principal(principal)

    def get_session_tenant(self, request: HttpRequest, user: Any) -> Tenant | None:
        """The tenant of a signed-in (non-API) user: a staff member's active company in the admin.

        See :mod:`cobee_django.staff`; users who are not active staff get no tenant.
        """
        from .staff import tenant_for_request

        return tenant_for_request(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer a tenancy error that escaped a plain Django view (the admin, a form view) with a 4xx.

        DRF views answer these errors themselves (they are ``APIException`` subclasses); anything
        else reaching Django's handler would be a 500 that also tells an attacker where the wall is.
        ``NoTenantBound`` is a 403 with :data:`NO_TENANT_PAGE_MESSAGE` for a signed-in user (a staff
        member with no company selected), and a 401 with :data:`UNAUTHENTICATED_VIEW_MESSAGE` and the
        Bearer challenge for a caller no one authenticated (a plain view without ``token_required``);
        a ``TenantViolation`` is its own status (403; 400 for ``CompanyNotNamed``). The body is
        constant; the message, which may name ids, is logged. Other exceptions (the programming
        errors of ``TenantError`` among them) go on to Django's handling.

        A database fault (:func:`cobee_django.db.faults._classify`), from a DRF view or a plain one,
        is answered by :meth:`database_unavailable`.
        """
        fault = _classify(exception)
        if fault is not None:
            return self.database_unavailable(request, exception, fault)
        challenge = None
        if isinstance(exception, NoTenantBound):
            user = getattr(request, "user", None)
            if user is not None and getattr(user, "is_authenticated", False):
                status, text = 403, NO_TENANT_PAGE_MESSAGE
            else:
                status, text, challenge = 401, UNAUTHENTICATED_VIEW_MESSAGE, bearer.challenge()
        elif isinstance(exception, TenantViolation):
            status, text = exception.status_code, str(exception.default_detail)
        else:
            return None
        response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
        if challenge is not None:
            response["WWW-Authenticate"] = challenge
        log_response(
            "%s on %s: %s",
            type(exception).__name__,
            request.path,
            exception,
            response=response,
            request=request,
            exception=exception,
        )
        return response

    def database_unavailable(self, request: HttpRequest, exception: Exception, fault: DatabaseFault) -> HttpResponse:
        """503 with ``Retry-After`` (``UNAVAILABLE_RETRY_AFTER``) for a request the database failed.

        The body is constant: ``{"detail": ...}`` for an API request (a DRF view, or any request
        with an ``Authorization`` header), the same text otherwise. The error (which may name a
        node) goes to the log and the ``database_unavailable`` signal only. The tenant is unbound
        on the way out as for every answer, and a connection the fault broke (a killed pooler, a
        restarted server) is closed now, so that the next request reconnects as soon as the
        database is back; Django would close it at the end of the request too, but not every
        handler (its test client, for one) runs that step.
        """
        audit.database_unavailable(type(self), request, fault, exception)
        _close_broken_connections()
        response: HttpResponse
        if _is_api_request(request):
            response = JsonResponse({"detail": DATABASE_UNAVAILABLE_MESSAGE}, status=503)
        else:
            response = HttpResponse(DATABASE_UNAVAILABLE_MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(get_settings().unavailable_retry_after)
        # An outage answer must not be cached by a proxy and served after the database is back.
        patch_cache_control(response, no_store=True)
        return response

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Finish an API answer: the RFC 6750 challenge of a 403 for a missing scope (``HasScopes``),
        and, for views that authenticate with access tokens, headers that keep shared caches out."""
        bearer.add_insufficient_scope_challenge(request, response)
        dpop.add_nonce_header(request, response)
        # DRF views that accept tokens, and any other view that verified one (plain views, Ninja).
        if _is_token_authenticated_view(response) or isinstance(getattr(request, "auth", None), ValidatedToken):
            # A proxy or CDN caching one client's answer (or error) would serve it to the next client.
            patch_cache_control(response, private=True)
            patch_vary_headers(response, ["Authorization"])
        return response


def _close_broken_connections() -> None:
    """Close each open connection a database error left unusable (Django's end-of-request step).

    Connections inside a transaction are left to whoever opened it.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and connection.errors_occurred and not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _is_api_request(request: HttpRequest) -> bool:
    """A request to a DRF view, or one carrying credentials in ``Authorization`` (a plain API view)."""
    if request.META.get("HTTP_AUTHORIZATION"):
        return True
    match = getattr(request, "resolver_match", None)
    view_class = getattr(getattr(match, "func", None), "cls", None)
    return isinstance(view_class, type) and issubclass(view_class, APIView)


def _is_token_authenticated_view(response: HttpResponseBase) -> bool:
    """Whether ``response`` comes from a DRF view that accepts :class:`JWTAuthentication`.

    DRF leaves the view's request (and its authenticators) on every response it finalizes, the
    error answers of authentication and permissions included.
    """
    context = getattr(response, "renderer_context", None) or {}
    authenticators = getattr(context.get("request"), "authenticators", None) or ()
    return any(isinstance(authenticator, JWTAuthentication) for authenticator in authenticators)
