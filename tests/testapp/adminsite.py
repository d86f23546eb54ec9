"""An admin site of the test app's tenant models, built only with cobee_django's admin base classes.

Used as the URLconf of the admin tests (``@pytest.mark.urls("tests.testapp.adminsite")``).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from cobee_django.admin import TenantModelAdmin, TenantStackedInline, TenantTabularInline

from .models import Badge, Department, Employee, Ledger, LedgerEntry, Project

site = admin.AdminSite(name="admin")


class BadgeInline(TenantStackedInline):
    model = Badge
    extra = 1


@admin.register(Department, site=site)
class DepartmentAdmin(TenantModelAdmin):
    ordering = ["name"]
    list_display = ["name", "company"]
    list_filter = ["company"]
    search_fields = ["name"]


@admin.register(Project, site=site)
class ProjectAdmin(TenantModelAdmin):
    ordering = ["name"]
    search_fields = ["name"]
    list_display = ["id", "name"]
    list_editable = ["name"]


@admin.register(Employee, site=site)
class EmployeeAdmin(TenantModelAdmin):
    list_display = ["email", "name", "company"]
    list_filter = ["department", "company"]
    search_fields = ["email", "name"]
    autocomplete_fields = ["department"]
    filter_horizontal = ["projects"]
    inlines = [BadgeInline]
    actions = ["give_raise"]

    @admin.action(description="Give a raise")
    def give_raise(self, request, queryset):
        for employee in queryset:
            employee.salary += 1
            employee.save()


@admin.register(Badge, site=site)
class BadgeAdmin(TenantModelAdmin):
    raw_id_fields = ["employee"]


class LedgerEntryInline(TenantTabularInline):
    model = LedgerEntry
    tenant_field = "owner"
    extra = 1


@admin.register(Ledger, site=site)
class LedgerAdmin(TenantModelAdmin):
    """A model whose foreign key to Company is not called ``company``."""

    tenant_field = "owner"
    ordering = ["name"]
    list_display = ["name", "owner"]
    list_filter = ["owner"]
    search_fields = ["name"]
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry, site=site)
class LedgerEntryAdmin(TenantModelAdmin):
    tenant_field = "owner"
    autocomplete_fields = ["ledger"]


urlpatterns = [
    path("admin/", site.urls),
    path("cobee/", include("cobee_django.urls")),
]
