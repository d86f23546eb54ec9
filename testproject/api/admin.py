"""The test project's admin: every model follows the company chosen in the header's switcher.

Each admin only adds ``TenantModelAdmin`` (or a tenant inline) to what any Django admin says; that
is the whole integration a project needs.
"""

from __future__ import annotations

from django.contrib import admin

from cobee_django.admin import TenantModelAdmin, TenantTabularInline

from .models import BenefitBagConfig, BenefitModel, Consumption, Employee


class BenefitBagConfigInline(TenantTabularInline):
    model = BenefitBagConfig
    extra = 0


@admin.register(BenefitModel)
class BenefitModelAdmin(TenantModelAdmin):
    list_display = ["name", "company"]
    search_fields = ["name"]
    inlines = [BenefitBagConfigInline]


@admin.register(Employee)
class EmployeeAdmin(TenantModelAdmin):
    list_display = ["email", "name", "surname", "state", "company"]
    list_filter = ["state", "model", "company"]
    search_fields = ["email", "name", "surname", "legal_id", "internal_id"]
    autocomplete_fields = ["model"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Consumption)
class ConsumptionAdmin(TenantModelAdmin):
    list_display = ["employee", "category", "amount_in_cents", "payroll", "date", "company"]
    list_filter = ["category", "payroll", "company"]
    search_fields = ["employee__email", "description"]
    raw_id_fields = ["employee"]
    date_hierarchy = "date"
