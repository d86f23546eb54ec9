"""Django Ninja: access tokens, tenancy and scopes in Ninja's idiom (the ``ninja`` extra).

Use this module's :class:`NinjaAPI` (Ninja's, plus the answers and the OpenAPI scopes below) and pass a
:class:`TokenAuth` as ``auth``, for the whole API, a router or one operation::

    from cobee_django.contrib.ninja import NinjaAPI, TokenAuth

    api = NinjaAPI(auth=TokenAuth(read_scopes=["read:employees"], write_scopes=["write:employees"]))

    @api.get("/companies/{companyId}/employees")
    def employees(request, companyId: str): ...

``TokenAuth`` runs the checks of :class:`cobee_django.views.TokenGuard`, in DRF's order: the Bearer
token (:mod:`cobee_django.credentials`), the tenant it grants, the ``companyId`` / ``corporationId``
of the path (404 when malformed, 403 when not reachable) and the scopes (403 ``insufficient_scope``),
answering with constant JSON bodies and RFC 6750 challenges. On success ``request.auth`` is the
``ValidatedToken`` and ``request.user`` its ``ClientPrincipal``; ``TenantMiddleware`` binds the tenant
for the operation from ``request.user``, as for DRF views, and unbinds it afterwards.

For ``async def`` operations Ninja runs ``TokenAuth`` in a worker thread; :class:`AsyncTokenAuth` is the
same checks as an async callable (they still run in a worker thread: the key-set download and the
membership query block). Either way the event loop never waits on a key-set download.

:class:`NinjaAPI` registers the exception handler that turns a refusal into its response (without it
a refusal is still Ninja's ``HttpError``: the status and the body, but no challenge header), and
documents each operation's scopes in the OpenAPI document as the drf-spectacular extension does: an
``oauth2`` client-credentials scheme listing the scopes, and ``bearerJWT``. :func:`install` does the
same for a ``NinjaAPI`` you build yourself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from ninja import NinjaAPI as _NinjaAPI
from ninja.errors import HttpError
from ninja.security import HttpBearer

from .. import state
from ..conf import get_settings
from ..state import Tenant
from ..tokens import ValidatedToken
from ..views import TokenGuard

__all__ = [
    "AsyncTokenAuth",
    "NinjaAPI",
    "TokenAuth",
    "document_scopes",
    "install",
    "operation_scopes",
    "refusal",
]

OAUTH2_NAME = "oauth2"
BEARER_NAME = "bearerJWT"
_OAUTH2_DESCRIPTION = (
    "Machine-to-machine access: obtain a token with the client-credentials grant (client id, client "
    "secret and the API's audience) and send it as `Authorization: Bearer <token>`."
)
_BEARER_DESCRIPTION = "An access token issued for this API, sent as `Authorization: Bearer <token>`."


#: Attribute of the ``HttpError`` a refusal raises: the complete answer (status, body, challenge).
RESPONSE_ATTR = "cobee_response"


def refusal(response: HttpResponseBase) -> HttpError:
    """Ninja's ``HttpError`` for a refusal of :class:`TokenAuth`, carrying the complete answer.

    Ninja answers it with the status and ``{"detail": ...}``; :func:`install` makes it answer the full
    response (with the challenge or ``Retry-After``).
    """
    detail = json.loads(response.content).get("detail", "") if isinstance(response, HttpResponse) else ""
    error = HttpError(response.status_code, str(detail))
    setattr(error, RESPONSE_ATTR, response)
    return error


def _url_kwargs(request: HttpRequest) -> dict[str, Any]:
    match = getattr(request, "resolver_match", None)
    # Ninja's typed path parameters (``{uuid:companyId}``) arrive converted: checked in their text form.
    return {name: str(value) for name, value in (match.kwargs if match is not None else {}).items()}


class TokenAuth(HttpBearer):
    """Ninja authentication with the access token, the tenant, the path's ids and the scopes.

    ``scopes`` are needed by every method, ``read_scopes`` by GET/HEAD/OPTIONS, ``write_scopes`` by the
    others; ``realm`` goes into the challenges. Returns the ``ValidatedToken`` (Ninja's ``request.auth``)
    or raises Ninja's ``HttpError`` (:func:`refusal`).
    """

    openapi_bearerFormat = "JWT"

    def __init__(
        self,
        scopes: Iterable[str] | None = None,
        *,
        read_scopes: Iterable[str] | None = None,
        write_scopes: Iterable[str] | None = None,
        realm: str | None = None,
        company_url_kwarg: str | None = None,
        corporation_url_kwarg: str | None = None,
    ) -> None:
        self.guard = TokenGuard(
            scopes=scopes,
            read_scopes=read_scopes,
            write_scopes=write_scopes,
            realm=realm,
            company_url_kwarg=company_url_kwarg,
            corporation_url_kwarg=corporation_url_kwarg,
            sender=type(self),
        )
        super().__init__()

    def __call__(self, request: HttpRequest) -> ValidatedToken:
        return self._admitted(request, self.admit(request))

    def admit(self, request: HttpRequest) -> Tenant | HttpResponseBase:
        """Run the checks; on success, have ``TenantMiddleware`` resolve the request's tenant now.

        Resolving it here, in the thread that authenticates, means an ``async def`` operation finds
        it resolved: reading the tenant on the event loop never has to query the database.
        """
        admitted = self.guard.admit(request, _url_kwargs(request))
        if not isinstance(admitted, HttpResponseBase):
            state.tenant_or_none()
        return admitted

    def authenticate(self, request: HttpRequest, token: str) -> ValidatedToken | None:
        """Not used: :meth:`__call__` reads the header with the package's own strict parser."""
        auth = getattr(request, "auth", None)
        return auth if isinstance(auth, ValidatedToken) else None

    def _admitted(self, request: HttpRequest, admitted: Tenant | HttpResponseBase) -> ValidatedToken:
        if isinstance(admitted, HttpResponseBase):
            raise refusal(admitted)
        validated: ValidatedToken = request.auth  # type: ignore[attr-defined]
        return validated

    def required_scopes(self, method: str) -> frozenset[str]:
        """The scopes an operation with HTTP ``method`` needs (what the OpenAPI document lists)."""
        return self.guard.required_scopes(method)


class AsyncTokenAuth(TokenAuth):
    """:class:`TokenAuth` as an async callable, for ``async def`` operations."""

    async def __call__(self, request: HttpRequest) -> ValidatedToken:  # type: ignore[override]
        return self._admitted(request, await sync_to_async(self.admit)(request))

    async def authenticate(self, request: HttpRequest, token: str) -> ValidatedToken | None:  # type: ignore[override]
        """Not used: :meth:`__call__` reads the header with the package's own strict parser."""
        auth = getattr(request, "auth", None)
        return auth if isinstance(auth, ValidatedToken) else None


def _http_error(api: _NinjaAPI) -> Any:
    def handle(request: HttpRequest, exc: Any) -> HttpResponse:
        response = getattr(exc, RESPONSE_ATTR, None)
        if isinstance(response, HttpResponse):
            return response
        # Any other HttpError: as Ninja's own handler answers it.
        return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)

    return handle


def operation_scopes(api: _NinjaAPI) -> dict[str, frozenset[str]]:
    """OpenAPI ``operationId`` -> the scopes its :class:`TokenAuth` requires, for every operation of ``api``."""
    return {operation_id: scopes for operation_id, (scopes, _names) in _secured_operations(api).items()}


def _operations(api: _NinjaAPI) -> Iterator[Any]:
    # Ninja keeps its operations without a public accessor: recent versions bind a copy of each router
    # to the API (``_get_bound_routers``, checked with 1.7), earlier ones keep them on the routers
    # (``_routers``). tests/test_ninja.py fails if neither holds.
    bound = getattr(api, "_get_bound_routers", None)
    routers = bound() if bound is not None else [router for _prefix, router in api._routers]
    for router in routers:
        for path_view in router.path_operations.values():
            yield from path_view.operations


def _secured_operations(api: _NinjaAPI) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    found: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for operation in _operations(api):
        auths = [a for a in operation.auth_callbacks if isinstance(a, TokenAuth)]
        if not auths:
            continue
        operation_id = operation.operation_id or api.get_openapi_operation_id(operation)
        scopes = frozenset().union(*(a.required_scopes(m) for a in auths for m in operation.methods))
        found[operation_id] = (scopes, frozenset(type(a).__name__ for a in auths))
    return found


def _token_url() -> str:
    settings = get_settings()
    if settings.openapi_token_url:
        return settings.openapi_token_url
    if not settings.issuers:
        return "/oauth/token"
    return settings.issuers[0].issuer.rstrip("/") + "/oauth/token"


def document_scopes(api: _NinjaAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Give each operation of ``schema`` secured by :class:`TokenAuth` its scopes, as the DRF extension does.

    Ninja lists a ``TokenAuth`` as an ``http`` bearer scheme named after its class, without scopes; it
    becomes ``oauth2`` (client credentials, with the operation's scopes) or ``bearerJWT``.
    """
    secured = _secured_operations(api)
    if not secured:
        return schema
    every_scope: set[str] = set()
    replaced: set[str] = set()
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or operation.get("operationId") not in secured:
                continue
            scopes, names = secured[operation["operationId"]]
            every_scope |= scopes
            replaced |= names
            others = [r for r in operation.get("security", []) if not set(r) & names]
            operation["security"] = [{OAUTH2_NAME: sorted(scopes)}, {BEARER_NAME: []}, *others]
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for name in replaced:
        schemes.pop(name, None)
    flow = {"tokenUrl": _token_url(), "scopes": {scope: scope for scope in sorted(every_scope)}}
    schemes[OAUTH2_NAME] = {"type": "oauth2", "description": _OAUTH2_DESCRIPTION, "flows": {"clientCredentials": flow}}
    schemes[BEARER_NAME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": _BEARER_DESCRIPTION,
    }
    return schema


def install(api: _NinjaAPI) -> None:
    """Make a ``NinjaAPI`` answer :class:`TokenAuth`'s refusals with their challenge (see the module docstring)."""
    api.add_exception_handler(HttpError, _http_error(api))


class NinjaAPI(_NinjaAPI):
    """Ninja's ``NinjaAPI`` with :func:`install` applied and each operation's scopes in its OpenAPI document."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        install(self)

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        return document_scopes(self, super().get_openapi_schema(*args, **kwargs))
