"""Who may manage what in the admin, and which company a staff user is managing right now.

A staff user may manage the companies of their :class:`~cobee_django.models.StaffGrant` rows
(a company, or every company of a corporation); superusers, and Cobee-wide staff flagged by the
OIDC staff claim, may reach every company. The admin works on one *choice* at a time: one
company, or one whole corporation. The choice is kept in the session under
``COBEE_DJANGO["ADMIN_SESSION_KEY"]`` as a plain key (``company:<uuid>`` or
``corporation:<uuid>``) and is checked against the current grants on every request, so a
tampered session or a revoked grant never widens access: an unknown key is replaced by the
default choice.

The staff's side of the package, grouped like :mod:`cobee_django.db`:

- this package: grants, the active choice and the tenant of an admin request;
- :mod:`cobee_django.admin` (outside this package, where users import from): the tenant-aware
  ``ModelAdmin`` and inline classes, and the admin of the tenant registry (registered when Django
  autodiscovers it);
- :mod:`cobee_django.staff.oidc`: staff sign-in through an OpenID provider;
- :mod:`cobee_django.staff.switcher`: the view that changes the active choice.

The admin's template tags stay in ``cobee_django.templatetags``, where Django looks for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from .. import membership
from ..conf import get_settings
from ..models import Company, Corporation, StaffGrant, StaffIdentity
from ..state import Tenant

__all__: list[str] = []

#: Where the resolved choice and the choices are cached on the request (computed once per request).
_REQUEST_ATTR = "_cobee_admin_choice"
_REQUEST_CHOICES_ATTR = "_cobee_admin_choices"
_UNSET = object()


@dataclass(frozen=True)
class TenantChoice:
    """One entry of the company switcher: a company, or a whole corporation."""

    kind: Literal["company", "corporation"]
    id: uuid.UUID
    label: str
    company_ids: frozenset[uuid.UUID]
    corporation_id: uuid.UUID | None

    @property
    def key(self) -> str:
        """The value posted by the switcher and kept in the session."""
        return f"{self.kind}:{self.id}"

    @property
    def single_company_id(self) -> uuid.UUID | None:
        """The company new objects get, when the choice is exactly one company."""
        return self.id if self.kind == "company" else None


def is_staff_user(user: Any) -> bool:
    """An active staff user of the database (API clients and anonymous users are not)."""
    return isinstance(user, AbstractBaseUser) and bool(
        getattr(user, "is_active", False) and getattr(user, "is_staff", False)
    )


def reaches_every_company(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Superusers, and people the OIDC staff claim marked as Cobee-wide staff, reach every company."""
    if not is_staff_user(user):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return bool(StaffIdentity.objects.filter(user_id=user.pk, all_companies=True).exists())


def _corporation_choice(corporation: Corporation, company_ids: Iterable[uuid.UUID]) -> TenantChoice:
    return TenantChoice(
        kind="corporation",
        id=corporation.id,
        label=f"{corporation} (all companies)",
        company_ids=frozenset(company_ids),
        corporation_id=corporation.id,
    )


def _company_choice(company: Company) -> TenantChoice:
    return TenantChoice(
        kind="company",
        id=company.id,
        label=str(company),
        company_ids=frozenset({company.id}),
        # One company is not its corporation: nothing corporation-wide is reachable from here.
        corporation_id=None,
    )


def _memberships(corporations: list[Corporation]) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
    """The companies of each corporation, from ``MEMBERSHIP_RESOLVER`` when set, else the table."""
    if membership.get_resolver() is not None:
        return {c.id: membership.companies_of(c.id) for c in corporations}
    members: dict[uuid.UUID, set[uuid.UUID]] = {c.id: set() for c in corporations}
    rows = Company.objects.filter(corporation__in=corporations).values_list("corporation_id", "id")
    for corporation_id, company_id in rows:
        members[corporation_id].add(company_id)
    return {key: frozenset(value) for key, value in members.items()}


def _ordered(items: Iterable[Any]) -> list[Any]:
    return sorted(items, key=lambda item: (str(item).lower(), str(item.id)))


def choices_for(user: AbstractBaseUser | AnonymousUser) -> list[TenantChoice]:
    """Everything ``user`` may switch to, from the grants as they are now.

    Each granted corporation comes first with every one of its companies after it; companies
    granted on their own follow. A corporation without companies is left out (nothing to manage).
    """
    if not is_staff_user(user):
        return []
    if reaches_every_company(user):
        corporations = list(Corporation.objects.all())
        companies = {c.id: c for c in Company.objects.all()}
        direct = set(companies)
        members = _memberships(corporations)
    else:
        grants = StaffGrant.objects.filter(user_id=user.pk)
        corporations = list(Corporation.objects.filter(staff_grants__in=grants).distinct())
        direct = set(grants.filter(company__isnull=False).values_list("company_id", flat=True))
        members = _memberships(corporations)
        wanted = direct.union(*members.values())
        companies = {c.id: c for c in Company.objects.filter(id__in=wanted)}
    choices: list[TenantChoice] = []
    placed: set[uuid.UUID] = set()
    for corporation in _ordered(corporations):
        company_ids = members.get(corporation.id, frozenset())
        if not company_ids:
            continue
        choices.append(_corporation_choice(corporation, company_ids))
        for company in _ordered(companies[c] for c in company_ids if c in companies and c not in placed):
            choices.append(_company_choice(company))
            placed.add(company.id)
    for company in _ordered(companies[c] for c in direct if c in companies and c not in placed):
        choices.append(_company_choice(company))
    return choices


def find_choice(user: AbstractBaseUser | AnonymousUser, key: object) -> TenantChoice | None:
    """The choice named by ``key`` if ``user`` may make it now, else ``None``."""
    if not isinstance(key, str):
        return None
    for choice in choices_for(user):
        if choice.key == key:
            return choice
    return None


def choices_for_request(request: HttpRequest) -> list[TenantChoice]:
    """:func:`choices_for` the request's user, computed once per request."""
    cached = getattr(request, _REQUEST_CHOICES_ATTR, None)
    if cached is None:
        cached = choices_for(getattr(request, "user", AnonymousUser()))
        setattr(request, _REQUEST_CHOICES_ATTR, cached)
    return cached


def active_choice(request: HttpRequest) -> TenantChoice | None:
    """The choice the staff user of ``request`` is working on, validated against current grants.

    The session's key is used when the user may still make that choice; otherwise (nothing
    stored, a grant revoked, a forged value) the first choice becomes active and replaces it.
    ``None`` means the user may manage no company at all (or is not staff).
    """
    cached = getattr(request, _REQUEST_ATTR, _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    user = getattr(request, "user", None)
    choice: TenantChoice | None = None
    if user is not None and is_staff_user(user):
        choices = choices_for_request(request)
        session = getattr(request, "session", None)
        session_key = get_settings().admin_session_key
        stored = session.get(session_key) if session is not None else None
        choice = next((c for c in choices if c.key == stored), None)
        if choice is None and choices:
            choice = choices[0]
        if session is not None:
            if choice is None:
                session.pop(session_key, None)
            elif stored != choice.key:
                session[session_key] = choice.key
    setattr(request, _REQUEST_ATTR, choice)
    return choice


def switch(request: HttpRequest, key: object) -> TenantChoice | None:
    """Make ``key`` the active choice of ``request``'s user; ``None`` (and no change) if not allowed."""
    user = getattr(request, "user", None)
    if user is None:
        return None
    choice = find_choice(user, key)
    if choice is None:
        return None
    request.session[get_settings().admin_session_key] = choice.key
    setattr(request, _REQUEST_ATTR, choice)
    return choice


def tenant_for_choice(choice: TenantChoice, user: Any) -> Tenant:
    """The tenant the ORM is scoped to while ``user`` works on ``choice``."""
    return Tenant(company_ids=choice.company_ids, corporation_id=choice.corporation_id, principal=user)


def tenant_for_request(request: HttpRequest) -> Tenant | None:
    """The tenant of an admin (session) request, for the tenant middleware; ``None`` binds nothing."""
    choice = active_choice(request)
    if choice is None:
        return None
    return tenant_for_choice(choice, request.user)
