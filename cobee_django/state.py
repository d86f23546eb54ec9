"""Which companies the running code may see: the tenant, held in a ``ContextVar``.

A :class:`Tenant` is an immutable value: the company ids it reaches, the corporation it stands
for (if any) and the principal it was derived from. It lives in a ``ContextVar``, so two threads
or two asyncio tasks never see each other's tenant, and every context manager here restores the
previous state in ``finally``.

Three states exist, and only three:

- a tenant is bound (:func:`for_company`, :func:`for_corporation`, :func:`for_tenant`, or the
  middleware's per-request binding): tenant models see exactly ``company_ids``;
- scoping was lifted on purpose (:func:`unscoped`): tenant models see every row;
- nothing is bound: tenant models raise :class:`~cobee_django.exceptions.NoTenantBound`.

``None`` and an empty set never mean "everything": a tenant with no companies sees no rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

from .exceptions import NoTenantBound

__all__ = [
    "UNSCOPED",
    "Tenant",
    "Unscoped",
    "for_company",
    "for_corporation",
    "for_tenant",
    "is_unscoped",
    "require_scope",
    "require_tenant",
    "tenant_or_none",
    "unscoped",
]


@dataclass(frozen=True)
class Tenant:
    """The companies a caller may reach; immutable, so it can be shared and cached safely."""

    company_ids: frozenset[uuid.UUID]
    corporation_id: uuid.UUID | None = None
    #: Who the tenant was derived from: a ``ClientPrincipal``, a staff user, or ``None`` (code).
    principal: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # A list, a None or a string here would turn into "everything" or a crash far from the bug.
        if not isinstance(self.company_ids, frozenset) or not all(isinstance(c, uuid.UUID) for c in self.company_ids):
            raise TypeError("Tenant.company_ids must be a frozenset of UUIDs.")
        if self.corporation_id is not None and not isinstance(self.corporation_id, uuid.UUID):
            raise TypeError("Tenant.corporation_id must be a UUID or None.")

    def reaches(self, company_id: object) -> bool:
        """True when ``company_id`` (a UUID or its string form) is one of this tenant's companies."""
        if not isinstance(company_id, uuid.UUID):
            try:
                company_id = uuid.UUID(str(company_id))
            except ValueError:
                return False
        return company_id in self.company_ids

    @cached_property
    def sorted_company_ids(self) -> tuple[uuid.UUID, ...]:
        """The company ids in a stable order (computed once per tenant, used in every query)."""
        return tuple(sorted(self.company_ids))

    @property
    def single_company_id(self) -> uuid.UUID | None:
        """The company id when exactly one company is reachable, else ``None``."""
        if len(self.company_ids) == 1:
            return next(iter(self.company_ids))
        return None


class Unscoped:
    """The state inside :func:`unscoped`: every company's rows, lifted on purpose (one instance, :data:`UNSCOPED`)."""

    def __repr__(self) -> str:
        return "UNSCOPED"


UNSCOPED: Final = Unscoped()

#: A callable bound instead of a tenant, asked each time the tenant is needed (see :func:`deferred`).
TenantResolver = Callable[[], Tenant | None]

#: Every tool that binds a tenant, named in each :class:`NoTenantBound` message.
HOW_TO_BIND = (
    "Bind one: in a DRF view, TenantMiddleware with an authenticated principal (HasTenant in the view's "
    "permission_classes); in a plain Django view, sync or async, nothing reads the access token unless the "
    "view says so: decorate it with cobee_django.views.token_required (or use TokenRequiredMixin); in "
    "Django Ninja, auth=cobee_django.contrib.ninja.TokenAuth(); in code, cobee_django.state.for_company(), "
    "for_corporation(), for_tenant(), or unscoped() to lift scoping on purpose; in a management command, "
    "subclass cobee_django.management.base.TenantCommand or run it through `manage.py with_tenant --company "
    "ID -- <command>`; in a Celery task, the Celery integration (cobee_django.contrib.celery.install(app) "
    "carries the caller's tenant in the task's headers and binds it in the worker)."
)
NO_TENANT_MESSAGE = f"No tenant is bound, so tenant models refuse to read or write. {HOW_TO_BIND}"

_State = Tenant | Unscoped | TenantResolver | None
_state: ContextVar[_State] = ContextVar("cobee_django_tenant", default=None)


def _current() -> Tenant | Unscoped | None:
    value = _state.get()
    if value is None or isinstance(value, (Tenant, Unscoped)):
        return value
    return value()


def tenant_or_none() -> Tenant | None:
    """Never raises: the bound tenant, or ``None`` when nothing is bound or inside :func:`unscoped`.

    ``None`` means "no tenant to name", never "every company": to limit a query, use
    :func:`require_scope`, which fails closed. (A per-request resolver's own errors, such as a
    database that cannot be reached, still propagate.)
    """
    value = _current()
    return value if isinstance(value, Tenant) else None


def is_unscoped() -> bool:
    """Never raises: True inside :func:`unscoped` (and no tenant bound more recently)."""
    return _current() is UNSCOPED


def require_scope() -> Tenant | Unscoped:
    """Raises NoTenantBound when nothing is bound; else the tenant to limit queries to, or :data:`UNSCOPED`.

    This is the fail-closed check every read and write of a tenant model goes through: inside
    :func:`unscoped` it answers :data:`UNSCOPED` (every row, said explicitly), with nothing bound it
    raises. It never answers ``None``.
    """
    value = _current()
    if value is None:
        raise NoTenantBound(NO_TENANT_MESSAGE)
    return value


def require_tenant() -> Tenant:
    """Raises NoTenantBound when no tenant is bound, inside :func:`unscoped` too; else the bound tenant."""
    tenant = tenant_or_none()
    if tenant is None:
        raise NoTenantBound(f"This operation needs a bound tenant (unscoped() is not one). {HOW_TO_BIND}")
    return tenant


@contextmanager
def _bind(value: _State) -> Iterator[None]:
    token = _state.set(value)
    try:
        yield
    finally:
        _state.reset(token)


def _as_uuid(value: object, what: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise TypeError(f"{what} must be a UUID (or its string form), not {type(value).__name__}.")


def tenant_for_companies(company_ids: Iterable[uuid.UUID | str], principal: Any = None) -> Tenant:
    """A tenant reaching exactly ``company_ids`` (no corporation)."""
    return Tenant(frozenset(_as_uuid(c, "A company id") for c in company_ids), None, principal)


@contextmanager
def for_company(company_id: uuid.UUID | str, *, principal: Any = None) -> Iterator[Tenant]:
    """Bind a tenant reaching one company for the duration of the block."""
    tenant = Tenant(frozenset({_as_uuid(company_id, "company_id")}), None, principal)
    with _bind(tenant):
        yield tenant


#: The companies of a corporation, as membership knows them now. :mod:`cobee_django.membership`
#: owns the lookup and installs it when it is imported (at startup, by the app config), so this
#: module stays below the ORM.
CorporationLookup = Callable[[uuid.UUID], frozenset[uuid.UUID]]
_corporation_lookup: list[CorporationLookup] = []


def set_corporation_lookup(lookup: CorporationLookup) -> None:
    """Install the function :func:`for_corporation` asks for a corporation's companies."""
    _corporation_lookup[:] = [lookup]


@contextmanager
def for_corporation(corporation_id: uuid.UUID | str, *, principal: Any = None) -> Iterator[Tenant]:
    """Bind a tenant reaching every company of a corporation, as membership knows them now."""
    corporation = _as_uuid(corporation_id, "corporation_id")
    if not _corporation_lookup:
        raise RuntimeError("for_corporation() needs cobee_django in INSTALLED_APPS (its membership lookup).")
    tenant = Tenant(_corporation_lookup[0](corporation), corporation, principal)
    with _bind(tenant):
        yield tenant


@contextmanager
def for_tenant(tenant: Tenant) -> Iterator[Tenant]:
    """Bind an already built tenant for the duration of the block."""
    if not isinstance(tenant, Tenant):
        raise TypeError("for_tenant() needs a Tenant; use unscoped() to lift scoping on purpose.")
    with _bind(tenant):
        yield tenant


@contextmanager
def unscoped() -> Iterator[None]:
    """Lift tenant scoping for the duration of the block, on purpose.

    Every tenant model then reads and writes every company's rows. Use it for migrations of data,
    maintenance commands and Cobee-wide staff, never with input a client controls; it is meant to
    be easy to find with grep.
    """
    with _bind(UNSCOPED):
        yield


@contextmanager
def deferred(resolver: TenantResolver) -> Iterator[None]:
    """Bind a resolver that is asked for the tenant each time one is needed.

    The middleware uses it because DRF authenticates inside the view, after middleware has run:
    the tenant follows whichever principal is authenticated when a tenant model is first queried.
    A resolver answering ``None`` means nothing is bound (fail closed). Resolvers should cache.
    """
    if not callable(resolver):
        raise TypeError("deferred() needs a callable returning a Tenant or None.")
    with _bind(resolver):
        yield
