"""Which companies a corporation holds, and how that is learnt.

A company-only token does not say which corporation its company belongs to, so membership has
several sources, all ending in the ``Company`` table (``Company.corporation``):

- the admin, and ``manage.py load_directory`` (a JSON or CSV export of the directory); a link
  they set (stamped with the moment they set it) is never changed by a token, older or newer;
- ``MEMBERSHIP_RESOLVER``: a dotted path to ``f(corporation_id) -> iterable of company ids``,
  for projects whose directory lives elsewhere; when set it answers instead of the table;
- rows your own code writes;
- only when the project opts in (``PROVISION_MEMBERSHIP = True``, for projects whose token issuer
  is their directory): verified tokens carrying both ``companyId`` and ``corporationId``; the link
  is recorded the first time it is seen, and when a company moves the token with the newest
  ``iat`` wins. What was recorded is remembered in process, so a request does not write to the
  database.

By default a token never creates a company nor creates or changes a corporation link: one
misconfigured client at the issuer would otherwise move a company into a corporation, and open
it to every client of that corporation, for good. A token whose corporation does not hold its
company (by the directory) still reaches its own company, and the disagreement is logged once
per process.
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import conf, state
from .models import Company, Corporation
from .state import Tenant

if TYPE_CHECKING:
    from .principal import ClientPrincipal

__all__: list[str] = []

Resolver = Callable[[uuid.UUID], Iterable[Any]]

logger = logging.getLogger("cobee_django.membership")

#: Sources whose links tokens never change: a person (or the directory) decided them.
AUTHORITATIVE_SOURCES = ("admin", "import")

#: How many (company, corporation) links are remembered as recorded, per process.
RECORDED_CACHE_SIZE = 10_000

_lock = threading.Lock()
_recording_lock = threading.Lock()
_recorded: OrderedDict[tuple[uuid.UUID, uuid.UUID | None], float | None] = OrderedDict()
_resolver: list[Resolver | None] = []


def _reset() -> None:
    with _lock:
        _recorded.clear()
        _resolver.clear()
        _disagreements.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # The resolver and the links recorded under the old settings may not hold under the new ones.
    if conf.is_reloading(setting):
        _reset()


def companies_from_database(corporation_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The companies the ``Company`` table links to ``corporation_id`` (the default source)."""
    return frozenset(Company.objects.filter(corporation_id=corporation_id).values_list("id", flat=True))


def get_resolver() -> Resolver | None:
    """The callable named by ``MEMBERSHIP_RESOLVER``, or ``None`` for the ``Company`` table."""
    if not _resolver:
        path = conf.get_settings().membership_resolver
        try:
            resolver = import_string(path) if path else None
        except ImportError as exc:
            raise ImproperlyConfigured(f"COBEE_DJANGO['MEMBERSHIP_RESOLVER'] cannot be imported: {exc}") from exc
        _resolver[:] = [resolver]
    return _resolver[0]


def companies_of(corporation_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """The ids of the companies of ``corporation_id`` (empty if none is known; never "all")."""
    resolver = get_resolver()
    if resolver is None:
        return companies_from_database(corporation_id)
    answer = resolver(corporation_id)
    if answer is None or isinstance(answer, (str, bytes)):
        raise ImproperlyConfigured("MEMBERSHIP_RESOLVER must return an iterable of company ids.")
    try:
        return frozenset(a if isinstance(a, uuid.UUID) else uuid.UUID(str(a)) for a in answer)
    except ValueError as exc:
        raise ImproperlyConfigured("MEMBERSHIP_RESOLVER returned something that is not a company id.") from exc


state.set_corporation_lookup(companies_of)


def _issued_at(claims: Any) -> float | None:
    iat = claims.get("iat") if hasattr(claims, "get") else None
    if isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat):
        return None
    return float(iat)


def record_membership(
    company_id: uuid.UUID, corporation_id: uuid.UUID | None, issued_at: float | None, source: str = "token"
) -> None:
    """Record that ``company_id`` exists and, if given, belongs to ``corporation_id``.

    A link already asserted later than ``issued_at`` is kept; without ``issued_at`` a company is
    only linked if it has no corporation yet. Safe to run concurrently.
    """
    asserted = datetime.datetime.fromtimestamp(issued_at, tz=datetime.timezone.utc) if issued_at is not None else None
    with transaction.atomic():
        if corporation_id is not None:
            Corporation.objects.get_or_create(pk=corporation_id)
        company, created = Company.objects.get_or_create(
            pk=company_id,
            defaults={
                "corporation_id": corporation_id,
                "membership_source": source,
                "membership_asserted_at": asserted if corporation_id is not None else None,
            },
        )
        if created or corporation_id is None:
            return
        rows = Company.objects.filter(pk=company_id)
        if company.corporation_id == corporation_id:
            if asserted is not None:
                rows.filter(Q(membership_asserted_at__lt=asserted) | Q(membership_asserted_at__isnull=True)).update(
                    membership_asserted_at=asserted
                )
            return
        if asserted is None:
            rows = rows.filter(corporation__isnull=True)
        else:
            # Compare-and-set: of two racing tokens, the newer one's link stays.
            rows = rows.filter(Q(membership_asserted_at__lt=asserted) | Q(membership_asserted_at__isnull=True))
        if source == "token":
            # Threat: a token (however new) undoing a link a superuser or the directory import set.
            rows = rows.exclude(membership_source__in=AUTHORITATIVE_SOURCES, membership_asserted_at__isnull=False)
        updated = rows.update(corporation_id=corporation_id, membership_source=source, membership_asserted_at=asserted)
        if not updated and company.membership_source in AUTHORITATIVE_SOURCES and company.membership_asserted_at:
            # Not an older token (routine): the directory behind the tokens disagrees with the admin or import.
            logger.warning(
                "A token's corporation for company %s was not recorded: the %s's link stands.",
                company_id,
                company.membership_source,
            )


def record_token(principal: ClientPrincipal) -> None:
    """Provision what a verified token proves, once per link and token age per process."""
    if not conf.get_settings().provision_membership:
        return
    key = (principal.company_id, principal.corporation_id)
    issued_at = _issued_at(principal.claims)
    if _is_recorded(key, issued_at):
        return
    # One recording at a time per process: the concurrent first requests of a new token make one
    # write instead of racing each other (on SQLite, racing read-then-write transactions fail with
    # "database is locked" instead of waiting).
    with _recording_lock:
        if _is_recorded(key, issued_at):
            return
        record_membership(principal.company_id, principal.corporation_id, issued_at)
        with _lock:
            _recorded[key] = issued_at
            _recorded.move_to_end(key)
            while len(_recorded) > RECORDED_CACHE_SIZE:
                _recorded.popitem(last=False)


def _is_recorded(key: tuple[uuid.UUID, uuid.UUID | None], issued_at: float | None) -> bool:
    with _lock:
        if key not in _recorded:
            return False
        seen = _recorded[key]
        return issued_at is None or (seen is not None and seen >= issued_at)


def tenant_for_principal(principal: ClientPrincipal) -> Tenant:
    """The tenant a verified token grants: its company, or every company of its corporation.

    The corporation's companies come from the directory (the ``Company`` table or
    ``MEMBERSHIP_RESOLVER``), never from the token, unless ``PROVISION_MEMBERSHIP`` is on.
    """
    record_token(principal)
    companies = frozenset({principal.company_id})
    if principal.corporation_id is not None:
        members = companies_of(principal.corporation_id)
        if principal.company_id not in members:
            _report_disagreement(principal.company_id, principal.corporation_id)
        companies |= members
    return Tenant(companies, principal.corporation_id, principal)


#: (company, corporation) pairs whose disagreement with the directory was logged, per process.
_disagreements: OrderedDict[tuple[uuid.UUID, uuid.UUID], None] = OrderedDict()


def _report_disagreement(company_id: uuid.UUID, corporation_id: uuid.UUID) -> None:
    """Log once per process that a token names a corporation the directory does not put its company in."""
    key = (company_id, corporation_id)
    with _lock:
        if key in _disagreements:
            return
        _disagreements[key] = None
        while len(_disagreements) > RECORDED_CACHE_SIZE:
            _disagreements.popitem(last=False)
    why = "" if conf.get_settings().provision_membership else " (PROVISION_MEMBERSHIP is off)"
    logger.warning(
        "A token names corporation %s for company %s, which the directory does not put in it: the token "
        "reaches its own company and the corporation's companies; its link is not recorded%s.",
        corporation_id,
        company_id,
        why,
        extra={
            "event": "membership_disagreement",
            "company_id": str(company_id),
            "corporation_id": str(corporation_id),
        },
    )
