"""DRF serializer fields that keep references inside one company.

:class:`CompanyRelatedField` is a ``PrimaryKeyRelatedField`` whose choices are the rows of one company:
the company of the row being written (an update), else the company named in the URL (``companyId``),
else the companies of the bound tenant. A body naming another company's row, even one the caller may
read (a sibling company of its corporation), is then a 400 ``does_not_exist`` by construction, with no
``get_queryset`` of your own.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from rest_framework.relations import PrimaryKeyRelatedField

from . import conf, state
from .company_field import COMPANY_ATTNAME, is_tenant_model
from .uuids import parse_uuid

__all__ = ["CompanyRelatedField"]


class CompanyRelatedField(PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A primary key of a tenant model, chosen among one company's rows (see the module docstring).

    ``company_url_kwarg`` names the URL keyword (default: the view's ``company_url_kwarg``, else the
    ``COMPANY_URL_KWARG`` setting). With nothing bound, validating raises ``NoTenantBound``.
    """

    def __init__(self, *, company_url_kwarg: str | None = None, **kwargs: Any) -> None:
        self.company_url_kwarg = company_url_kwarg
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] | None = super().get_queryset()
        if queryset is None or not is_tenant_model(queryset.model):
            raise ImproperlyConfigured(
                "CompanyRelatedField needs the queryset of a tenant model (a TenantModel subclass)."
            )
        company_id = self.get_company_id()
        tenant = state.tenant_or_none()
        choices: QuerySet[Any]
        if company_id is not None:
            choices = queryset.filter(**{COMPANY_ATTNAME: company_id})
        elif tenant is not None:
            choices = queryset.filter(**{f"{COMPANY_ATTNAME}__in": tenant.sorted_company_ids})
        else:
            # Inside unscoped(), every company's rows; with nothing bound the tenant model refuses to
            # run (NoTenantBound, a 401 in a DRF view): fail closed.
            choices = queryset
        return choices

    def get_company_id(self) -> uuid.UUID | None:
        """The one company whose rows are the choices, or ``None`` for the bound tenant's companies."""
        instance = getattr(self.parent, "instance", None)
        if isinstance(instance, Model) and is_tenant_model(type(instance)):
            owner: uuid.UUID | None = getattr(instance, COMPANY_ATTNAME)
            if owner is not None:
                return owner
        view = self.context.get("view")
        kwargs = getattr(view, "kwargs", None) or {}
        kwarg = self.company_url_kwarg or getattr(view, "company_url_kwarg", None)
        kwarg = kwarg or conf.get_settings().company_url_kwarg
        if kwarg in kwargs:
            # A malformed id reaches no company: every choice is refused (the view answers 404 first).
            return parse_uuid(kwargs[kwarg]) or uuid.UUID(int=0)
        return None

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except DjangoValidationError:
            # A malformed key of a UUID primary key: the field's 400, never a 500.
            self.fail("incorrect_type", data_type=type(data).__name__)
