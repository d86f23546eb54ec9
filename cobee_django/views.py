"""View mixins for endpoints nested under a company, such as ``companies/{companyId}/employees``."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings

from . import conf
from .company_field import COMPANY_ATTNAME
from .permissions import parse_url_id

__all__ = ["CompanyFromURLMixin", "as_drf_validation_error"]


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
        return parse_url_id(self, self.get_company_url_kwarg())  # type: ignore[arg-type]

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
