from rest_framework import serializers

from .models import Department, Employee


class DepartmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Department
        fields = ["id", "name", "company"]
        # The URL decides the company, never the body (CompanyFromURLMixin assigns it on create).
        read_only_fields = ["company"]


class CompanyDepartmentField(serializers.PrimaryKeyRelatedField):
    """A department of the URL's company: another company's id is "does not exist", like a made-up one."""

    def get_queryset(self):
        return Department.objects.filter(company_id=self.context["view"].get_url_company_id())


class EmployeeSerializer(serializers.ModelSerializer):
    department = CompanyDepartmentField(required=False, allow_null=True)

    class Meta:
        model = Employee
        fields = ["id", "email", "name", "department", "company"]
        read_only_fields = ["company"]
