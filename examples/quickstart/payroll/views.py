from rest_framework import viewsets

from cobee_django.permissions import CanAccessCompany, HasScopes, HasTenant
from cobee_django.views import CompanyFromURLMixin

from .models import Department, Employee
from .serializers import DepartmentSerializer, EmployeeSerializer


class CompanyViewSet(CompanyFromURLMixin, viewsets.ModelViewSet):
    """``companies/{companyId}/...``: that company's rows only; reads and writes need their own scope."""

    permission_classes = [HasTenant, CanAccessCompany, HasScopes]
    required_read_scopes = ["read:employees"]
    required_write_scopes = ["write:employees"]


class DepartmentViewSet(CompanyViewSet):
    queryset = Department.objects.order_by("name")  # scoped to the caller's companies when it runs
    serializer_class = DepartmentSerializer


class EmployeeViewSet(CompanyViewSet):
    queryset = Employee.objects.order_by("email")
    serializer_class = EmployeeSerializer
