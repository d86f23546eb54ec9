"""The API, built only from cobee_django's public pieces.

Every view authenticates with ``JWTAuthentication`` (the project default), requires a bound tenant
and the right scope, and checks the company or corporation of its URL against the token. Querysets
come from the tenant-scoped default managers, so a forgotten filter can never leak another
tenant's rows; ``CompanyFromURLMixin`` narrows a corporation-wide caller to the company named in
the URL and puts new rows in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from cobee_django.permissions import CanAccessCompany, CanAccessCorporation, HasScopes, HasTenant
from cobee_django.views import CompanyFromURLMixin, CorporationFromURLMixin

from .models import BenefitModel, Consumption, Employee, EmployeeState
from .pagination import EmployeePagination
from .renderers import CSVRenderer
from .serializers import (
    BenefitModelSerializer,
    ConsumptionQuerySerializer,
    ConsumptionSerializer,
    EmployeeFilterSerializer,
    EmployeeSerializer,
)

READ = ["read:employees"]
WRITE = ["write:employees"]


class EmployeeScopes:
    required_read_scopes = READ
    required_write_scopes = WRITE


def filter_employees(queryset: QuerySet[Employee], request: Request) -> QuerySet[Employee]:
    """Apply the list filters of the query string (400 with field errors on bad values)."""
    filters = EmployeeFilterSerializer(data=request.query_params)
    filters.is_valid(raise_exception=True)
    data = filters.validated_data
    if "email" in data:
        queryset = queryset.filter(email__iexact=data["email"])
    if "legalId" in data:
        queryset = queryset.filter(legal_id=data["legalId"])
    if "internalId" in data:
        queryset = queryset.filter(internal_id=data["internalId"])
    if "state" in data:
        queryset = queryset.filter(state=data["state"])
    if "companyId" in data:
        queryset = queryset.filter(company_id=data["companyId"])
    return queryset


@contextmanager
def unique_employee() -> Iterator[None]:
    """Answer 400, not 500, when a concurrent request took the email or legal id first.

    The serializer and the model check uniqueness, but two requests can both pass those checks;
    the database constraint then decides, and the loser gets the same answer as a plain duplicate.
    """
    # Inside a transaction, a savepoint keeps it usable after the failed statement. Outside one the
    # statement fails alone; opening a transaction there would make SQLite answer "database is
    # locked" to concurrent writers (its read lock cannot be upgraded to a write lock).
    in_transaction = transaction.get_connection(Employee.objects.db).in_atomic_block
    try:
        with transaction.atomic() if in_transaction else nullcontext():
            yield
    except IntegrityError:
        raise ValidationError(
            {api_settings.NON_FIELD_ERRORS_KEY: ["An employee with this email or legal id already exists."]}
        ) from None


class CompanyEmployees(EmployeeScopes, CompanyFromURLMixin, generics.ListCreateAPIView[Employee]):
    """``GET|POST /api/v3/companies/{companyId}/employees``."""

    permission_classes = [HasTenant, CanAccessCompany, HasScopes]
    serializer_class = EmployeeSerializer
    pagination_class = EmployeePagination

    queryset = Employee.objects.all()

    def get_queryset(self) -> QuerySet[Employee]:
        queryset = super().get_queryset()  # narrowed to the URL's company by CompanyFromURLMixin
        return filter_employees(queryset, self.request) if self.request.method == "GET" else queryset

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "company_id": self.get_url_company_id()}

    def perform_create(self, serializer: BaseSerializer[Employee]) -> None:
        with unique_employee():
            super().perform_create(serializer)


class CompanyEmployee(EmployeeScopes, CompanyFromURLMixin, generics.RetrieveUpdateDestroyAPIView[Employee]):
    """``GET|PATCH|DELETE /api/v3/companies/{companyId}/employees/{employeeId}``.

    DELETE marks the employee removed: consumptions already paid stay on the record.
    """

    permission_classes = [HasTenant, CanAccessCompany, HasScopes]
    serializer_class = EmployeeSerializer
    lookup_url_kwarg = "employeeId"
    http_method_names = ["get", "patch", "delete", "head", "options"]
    queryset = Employee.objects.all()

    def perform_update(self, serializer: BaseSerializer[Employee]) -> None:
        with unique_employee():
            super().perform_update(serializer)

    def perform_destroy(self, instance: Employee) -> None:
        instance.state = EmployeeState.REMOVED
        instance.save(update_fields=["state", "updated_at"])


class Employees(EmployeeScopes, generics.ListAPIView[Employee]):
    """``GET /api/v3/employees``: every employee the caller may see, each with its ``companyId``."""

    permission_classes = [HasTenant, HasScopes]
    serializer_class = EmployeeSerializer
    pagination_class = EmployeePagination

    def get_queryset(self) -> QuerySet[Employee]:
        return filter_employees(Employee.objects.order_by("company_id", "surname", "name", "id"), self.request)


class CompanyBenefitModels(EmployeeScopes, CompanyFromURLMixin, generics.ListAPIView[BenefitModel]):
    """``GET /api/v3/companies/{companyId}/benefit-models``."""

    permission_classes = [HasTenant, CanAccessCompany, HasScopes]
    serializer_class = BenefitModelSerializer
    queryset = BenefitModel.objects.prefetch_related("bag_configs")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(self.get_queryset(), many=True)
        return Response({"benefitModels": serializer.data})


class CompanyBenefitModel(EmployeeScopes, CompanyFromURLMixin, generics.RetrieveAPIView[BenefitModel]):
    """``GET /api/v3/companies/{companyId}/benefit-models/{benefitModelId}``."""

    permission_classes = [HasTenant, CanAccessCompany, HasScopes]
    serializer_class = BenefitModelSerializer
    lookup_url_kwarg = "benefitModelId"
    queryset = BenefitModel.objects.prefetch_related("bag_configs")


CSV_COLUMNS = [
    "companyId",
    "companyName",
    "employeeId",
    "email",
    "legalId",
    "internalId",
    "category",
    "amountInCents",
    "currency",
    "payroll",
    "date",
]


class CorporationConsumptions(EmployeeScopes, CorporationFromURLMixin, APIView):
    """``GET /api/v3/corporations/{corporationId}/consumptions?payroll=YYYY-MM``, grouped by company.

    JSON by default, CSV with ``Accept: text/csv``. An employee who moved between companies of the
    corporation appears once under each company.
    """

    permission_classes = [HasTenant, CanAccessCorporation, HasScopes]
    renderer_classes = [JSONRenderer, CSVRenderer]

    def get(self, request: Request, corporationId: str) -> Response:
        query = ConsumptionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        payroll = query.validated_data["payroll"]
        consumptions = (
            Consumption.objects.filter(company_id__in=self.get_corporation_company_ids(), payroll=payroll)
            .select_related("employee")
            .order_by("date", "id")
        )
        report = self.group_by_company(consumptions)
        if isinstance(request.accepted_renderer, CSVRenderer):
            rows = [[company.id, company.name, *self._csv_row(row)] for company, rows in report for row in rows]
            return Response({"columns": CSV_COLUMNS, "rows": rows})
        return Response(
            {
                "corporationId": str(self.get_url_corporation_id()),
                "payroll": payroll,
                "companies": [
                    {
                        "companyId": str(company.id),
                        "companyName": company.name,
                        "total": {"amountInCents": sum(c.amount_in_cents for c in rows), "currency": "EUR"},
                        "consumptions": ConsumptionSerializer(rows, many=True).data,
                    }
                    for company, rows in report
                ],
            }
        )

    @staticmethod
    def _csv_row(consumption: Consumption) -> list[Any]:
        employee = consumption.employee
        return [
            employee.id,
            employee.email,
            employee.legal_id,
            employee.internal_id,
            consumption.category,
            consumption.amount_in_cents,
            consumption.currency,
            consumption.payroll,
            consumption.date.isoformat(),
        ]

    def handle_exception(self, exc: Exception) -> Response:
        # Errors are always JSON, even when the caller asked for CSV.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)
