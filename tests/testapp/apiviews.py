"""A small API shaped like a user's: JWTAuthentication, tenant and scope permissions, a schema.

Used by the testing-helper, audit, OpenAPI and documentation tests (``pytest.mark.urls``).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django.authentication import JWTAuthentication
from cobee_django.permissions import CanAccessCompany, CanAccessCorporation, HasScopes, HasTenant
from cobee_django.views import CompanyFromURLMixin

from .models import Department, Employee


class EmployeeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Employee
        fields = ["id", "email", "name", "company"]
        read_only_fields = ["company"]


class Base:
    authentication_classes = [JWTAuthentication]


class CompanyEmployees(Base, CompanyFromURLMixin, generics.ListCreateAPIView):
    """``GET|POST companies/{companyId}/employees``: read and write scopes per method."""

    queryset = Employee.objects.order_by("email")
    serializer_class = EmployeeSerializer
    permission_classes = [HasTenant, CanAccessCompany, HasScopes]
    required_read_scopes = ["read:employees"]
    required_write_scopes = ["write:employees"]


class CompanyEmployee(Base, CompanyFromURLMixin, generics.RetrieveUpdateDestroyAPIView):
    queryset = Employee.objects.all()
    serializer_class = EmployeeSerializer
    permission_classes = [HasTenant & CanAccessCompany & HasScopes]
    required_read_scopes = ["read:employees"]
    required_write_scopes = ["write:employees"]


class CorporationDepartments(Base, APIView):
    """Every scope in ``required_scopes`` plus the read scope: both are needed."""

    permission_classes = [CanAccessCorporation, HasScopes]
    required_scopes = ["read:corporation"]
    required_read_scopes = ["read:departments"]

    def get(self, request, corporationId):
        return Response({"departments": sorted(d.name for d in Department.objects.all())})


class AnyEmployee(Base, generics.RetrieveAPIView):
    """Fetches through a plain, unscoped queryset: only the object-level check stands (a 404)."""

    queryset = QuerySet(model=Employee)
    serializer_class = EmployeeSerializer
    permission_classes = [HasTenant]


class Either(Base, APIView):
    """A scope or a tenant: composed with ``|``, a missing scope alone refuses nothing."""

    permission_classes = [HasScopes | HasTenant]
    required_scopes = ["admin:everything"]

    def get(self, request):
        return Response({"ok": True})


class Health(APIView):
    """No authentication, no permission: the schema lists no security for it."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("api/v3/companies/<str:companyId>/employees", CompanyEmployees.as_view()),
    # The path a reader's own project has (the quick start's shape), for the manual's examples.
    path("api/companies/<str:companyId>/employees/", CompanyEmployees.as_view()),
    path("api/v3/companies/<str:companyId>/employees/<int:pk>", CompanyEmployee.as_view()),
    path("api/v3/corporations/<str:corporationId>/departments", CorporationDepartments.as_view()),
    path("api/v3/employees/<int:pk>", AnyEmployee.as_view()),
    path("api/v3/either", Either.as_view()),
    path("health", Health.as_view()),
    path("api/schema/", SpectacularAPIView.as_view()),
]
