from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from cobee_django.permissions import CanAccessCompany, CanAccessCorporation, HasScopes, HasTenant
from cobee_django.views import CompanyFromURLMixin

from .auth import HeaderAuthentication
from .models import Department, Employee


class DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name", "company"]
        read_only_fields = ["company"]


class EmployeeSerializer(serializers.ModelSerializer):
    # Built at import time: must still validate against the requesting tenant.
    department = serializers.PrimaryKeyRelatedField(queryset=Department.objects.all(), allow_null=True)

    class Meta:
        model = Employee
        fields = ["id", "email", "department", "company"]
        read_only_fields = ["company"]


class Base:
    authentication_classes = [HeaderAuthentication]


class CompanyDepartments(Base, CompanyFromURLMixin, generics.ListCreateAPIView):
    queryset = Department.objects.all()
    serializer_class = DepartmentSerializer
    permission_classes = [HasTenant & CanAccessCompany & HasScopes]
    required_read_scopes = ["read:departments"]
    required_write_scopes = ["write:departments"]


class CompanyEmployees(Base, CompanyFromURLMixin, generics.ListCreateAPIView):
    queryset = Employee.objects.all()
    serializer_class = EmployeeSerializer
    permission_classes = [CanAccessCompany]


class AnyDepartment(Base, generics.RetrieveUpdateDestroyAPIView):
    """Fetches through a plain, unscoped queryset, so only the object-level check stands."""

    queryset = QuerySet(model=Department)
    serializer_class = DepartmentSerializer
    permission_classes = [HasTenant]


class CompanyDepartment(Base, generics.RetrieveAPIView):
    queryset = QuerySet(model=Department)
    serializer_class = DepartmentSerializer
    permission_classes = [CanAccessCompany]


class AllDepartments(Base, generics.ListAPIView):
    queryset = Department.objects.order_by("name")
    serializer_class = DepartmentSerializer
    permission_classes = [HasTenant]


class CorporationView(Base, APIView):
    permission_classes = [CanAccessCorporation]

    def get(self, request, corporationId):
        return Response({"companies": sorted(str(d.company_id) for d in Department.objects.all())})


class ScopedView(Base, APIView):
    permission_classes = [HasScopes]
    required_scopes = ["read:a"]

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})


class ReadWriteView(ScopedView):
    required_scopes = None
    required_read_scopes = ["read:a"]
    required_write_scopes = ["write:a"]


class UnconfiguredView(ScopedView):
    required_scopes = None


class ComposedView(ScopedView):
    permission_classes = [HasScopes | HasTenant]


class NotScopedView(ScopedView):
    permission_classes = [~HasScopes]


class Boom(Base, APIView):
    permission_classes = [HasTenant]

    def get(self, request):
        list(Department.objects.all())
        raise RuntimeError("boom")


# --- views authenticated with access tokens (the project's default JWTAuthentication) ---------------


class ForgotPermissions(generics.ListCreateAPIView):
    """A view whose author forgot HasTenant: the tenancy layer still answers, never a 500."""

    queryset = Department.objects.all()
    serializer_class = DepartmentSerializer
    permission_classes = []


class WriteElsewhere(APIView):
    """Creates a department in the company the body names (a tenant refusal when it is not reachable)."""

    permission_classes = [HasTenant]

    def post(self, request):
        department = Department.objects.create(company_id=request.data["company"], name="x")
        return Response({"id": department.pk}, status=201)


class TokenCompanyDepartments(CompanyFromURLMixin, generics.ListAPIView):
    queryset = Department.objects.all()
    serializer_class = DepartmentSerializer
    permission_classes = [HasTenant, CanAccessCompany, HasScopes]
    required_scopes = ["read:departments"]


class ListStyleDepartments(CompanyDepartments):
    """CompanyDepartments with its permissions listed instead of ``&``-ed."""

    permission_classes = [HasTenant, CanAccessCompany, HasScopes]


class OrStyleDepartments(CompanyDepartments):
    permission_classes = [HasScopes | CanAccessCompany]
