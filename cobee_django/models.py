"""The tenant registry (corporations, companies, staff grants) and ``TenantModel``.

The registry rows are not tenant-scoped themselves; they are what scoping is computed from.
``TenantModel`` is the abstract base of every scoped model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import django
from django.conf import settings
from django.db import connections, models, router
from django.db.models import Q, QuerySet

from . import _django, guards, state  # noqa: F401  (_django scopes tenant models' managers and joins)
from .company_field import COMPANY_ATTNAME, SAVED_COMPANY, unscoped_rows
from .exceptions import CitusError, TenantViolation
from .managers import TenantManager, on_citus

__all__ = ["Company", "Corporation", "StaffGrant", "StaffIdentity", "TenantModel"]


class _MembershipSource(models.TextChoices):
    """Where the link between a company and its corporation was learnt."""

    TOKEN = "token", "verified token"
    ADMIN = "admin", "admin"
    IMPORT = "import", "directory import"
    RESOLVER = "resolver", "membership resolver"


class Corporation(models.Model):
    """A group of companies; a corporation-wide client may reach every one of them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=True)
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name or str(self.id)


class Company(models.Model):
    """One tenant. Tenant models point at it; a token's ``companyId`` names it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=True)
    name = models.CharField(max_length=200, blank=True)
    corporation = models.ForeignKey(
        Corporation, null=True, blank=True, on_delete=models.SET_NULL, related_name="companies"
    )
    membership_source = models.CharField(
        max_length=16, choices=_MembershipSource.choices, default=_MembershipSource.ADMIN
    )
    #: When the corporation link was last asserted (for tokens: their ``iat``); newer wins.
    membership_asserted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name or str(self.id)


#: Django 5.1 renamed CheckConstraint's ``check`` argument to ``condition``.
_CHECK_ARG = "condition" if django.VERSION >= (5, 1) else "check"
_ONE_TARGET = (Q(company__isnull=False) & Q(corporation__isnull=True)) | (
    Q(company__isnull=True) & Q(corporation__isnull=False)
)


class _GrantSource(models.TextChoices):
    ADMIN = "admin", "admin"
    OIDC = "oidc", "OIDC claims"


class StaffGrant(models.Model):
    """A staff user may manage one company, or every company of one corporation, in the admin."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cobee_grants")
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.CASCADE, related_name="staff_grants")
    corporation = models.ForeignKey(
        Corporation, null=True, blank=True, on_delete=models.CASCADE, related_name="staff_grants"
    )
    #: Grants from OIDC claims are replaced at each sign-in; admin grants are kept.
    source = models.CharField(max_length=8, choices=_GrantSource.choices, default=_GrantSource.ADMIN)

    class Meta:
        constraints = [
            models.CheckConstraint(
                **{_CHECK_ARG: _ONE_TARGET},  # type: ignore[arg-type]
                name="cobee_staffgrant_company_xor_corporation",
            ),
            models.UniqueConstraint(fields=["user", "company"], name="cobee_staffgrant_unique_company"),
            models.UniqueConstraint(fields=["user", "corporation"], name="cobee_staffgrant_unique_corporation"),
        ]

    def __str__(self) -> str:
        target = f"company {self.company}" if self.company_id else f"corporation {self.corporation}"
        return f"{self.user} manages {target}"


class StaffIdentity(models.Model):
    """Who a staff user is at an OpenID provider: the (issuer, subject) pair users are matched by.

    Emails are not identifiers (they change, and some providers let people set unverified ones),
    so a sign-in finds its user only through this row.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cobee_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    #: Set from the staff claim at each sign-in: Cobee-wide staff may reach every company.
    all_companies = models.BooleanField(default=False)
    last_sign_in = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="cobee_staffidentity_unique_subject"),
        ]
        verbose_name_plural = "staff identities"

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class TenantModel(models.Model):
    """A model whose rows each belong to one company; the base of every scoped model.

    ``objects`` (the default manager) and Django's ``_base_manager`` see only the bound tenant's
    rows and raise :class:`~cobee_django.exceptions.NoTenantBound` when nothing is bound. Writes are
    guarded: see :mod:`cobee_django.guards`.
    """

    #: Lets other modules recognise tenant models without importing this one.
    _cobee_tenant_model = True

    company = models.ForeignKey(Company, on_delete=models.PROTECT, db_index=True)

    objects = TenantManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The guards run in a pre_save receiver (guards.check_any_save), so raw saves go through them too.
        super().save(*args, **kwargs)
        setattr(self._state, SAVED_COMPANY, getattr(self, COMPANY_ATTNAME))

    save.alters_data = True  # type: ignore[attr-defined]

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().from_db(*args, **kwargs)
        # The company the row has in the database: a save that changes it is a move (guards.check_move).
        if COMPANY_ATTNAME in obj.__dict__:
            setattr(obj._state, SAVED_COMPANY, obj.__dict__[COMPANY_ATTNAME])
        return obj

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        guards.check_delete(self, using)
        return super().delete(*args, **kwargs)

    delete.alters_data = True  # type: ignore[attr-defined]

    def _do_update(self, base_qs: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        # save() updates by primary key through the scoped base manager, pinned to the row's company
        # so that Citus can route it (see _pinned_update). When that finds nothing, Django
        # would INSERT: a row of another company holding the same primary key must be a
        # TenantViolation, not an IntegrityError (nor, without a unique key, a second row).
        using, pk_val, values, *rest = args
        updated = self._pinned_update(
            base_qs,
            values,
            lambda qs, vals: super(TenantModel, self)._do_update(qs, using, pk_val, vals, *rest, **kwargs),
        )
        if updated or state.is_unscoped():
            return updated
        if guards.database_assigns_pk(type(self)) and not self._state.adding:
            # A loaded row's sequential key the tenant has no row with: the same refusal whether another
            # company has it or it is free (inserting it would tell which ids exist). A new row with a
            # chosen key was refused before (guards.check_save), unless a fixture (raw) loads it.
            raise guards.pk_refused(type(self))
        if unscoped_rows(base_qs.model, using=base_qs.db).filter(pk=self.pk).exists():
            raise TenantViolation(f"This {self._meta.label} row belongs to a company the bound tenant does not reach.")
        return updated

    def _pinned_update(
        self,
        base_qs: QuerySet[Any],
        values: list[tuple[Any, Any, Any]],
        update: Callable[[QuerySet[Any], list[tuple[Any, Any, Any]]], Any],
    ) -> Any:
        """Run ``save()``'s UPDATE pinned to the row's company.

        Django's UPDATE sets every field, the company included, and finds the row by primary key
        (plus the tenant filter: ``company_id IN (...)`` for a corporation). Citus refuses to set the
        distribution column unless the statement pins one shard. So the UPDATE first runs with
        ``company_id = <the instance's company>`` in its ``WHERE`` and the company left out of its
        ``SET`` (unchanged, by that very filter): one shard, on every database. Only when no row
        matched (the row is in another company: a move, which the write guards have allowed) does
        the full UPDATE run; Citus cannot move a row between shards, so there (the backend's
        ``is_citus`` flag) that is a :class:`~cobee_django.exceptions.CitusError`.
        """
        company = getattr(self, COMPANY_ATTNAME, None)
        rest = [v for v in values if getattr(v[0], "attname", None) != COMPANY_ATTNAME]
        if company is None or len(rest) == len(values):
            return update(base_qs, values)  # the company is not being written: nothing to pin
        pinned = base_qs.filter(**{COMPANY_ATTNAME: company})
        if rest or pinned.filter(pk=self.pk).exists():
            updated = update(pinned, rest)
            if updated:
                return updated
        if not base_qs.filter(pk=self.pk).exists():
            return update(base_qs, values)  # no such row here: Django's own answer (save() inserts, or raises)
        if on_citus(connections[base_qs.db]):
            raise CitusError(
                f"This {self._meta.label} row belongs to another company: Citus cannot move a row between "
                "companies (shards). Delete it and create it again in the new company."
            )
        return update(base_qs, values)  # a move the write guards allowed
