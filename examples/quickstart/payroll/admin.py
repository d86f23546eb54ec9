from django.contrib import admin

from cobee_django.staff.admin import TenantModelAdmin

from .models import Department, Employee


@admin.register(Department)
class DepartmentAdmin(TenantModelAdmin):
    list_display = ["name", "company"]


@admin.register(Employee)
class EmployeeAdmin(TenantModelAdmin):
    list_display = ["email", "name", "department", "company"]
