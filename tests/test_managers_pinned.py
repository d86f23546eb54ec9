"""A query filtered by its own company still gets the tenant condition (no shortcut on the security path)."""

from __future__ import annotations

import pytest
from django.db.models import Q

from cobee_django import state
from tests.testapp.models import Employee


@pytest.fixture
def rows(tenants):
    with state.unscoped():
        for key in ("a", "b", "c"):
            Employee.objects.create(company_id=getattr(tenants, key), email=f"{key}@x")
    return tenants


def company_terms(queryset):
    """How many times the WHERE clause names the company column."""
    sql = str(queryset.query).replace("`", '"')
    where = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else ""
    return where.count('"testapp_employee"."company_id"')


def emails(queryset):
    return sorted(employee.email for employee in queryset)


def test_a_query_pinned_to_a_reachable_company_still_gets_the_tenant_condition(rows):
    with state.for_corporation(rows.corp):
        queryset = Employee.objects.filter(company_id=rows.a)
        assert company_terms(queryset) == 2
        assert emails(queryset) == ["a@x"]
        assert queryset.count() == 1
        # The company as a string or as an object pins it the same way.
        assert emails(Employee.objects.filter(company_id=str(rows.a))) == ["a@x"]


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda rows: Employee.objects.filter(company_id=rows.c), id="another company"),
        pytest.param(lambda rows: Employee.objects.filter(company_id__in=[rows.a, rows.c]), id="in"),
        pytest.param(lambda rows: Employee.objects.filter(Q(company_id=rows.a) | Q(email="c@x")), id="or"),
        pytest.param(lambda rows: Employee.objects.exclude(company_id=rows.a), id="negated"),
        pytest.param(lambda rows: Employee.objects.filter(~Q(company_id=rows.c)), id="not another"),
        pytest.param(lambda rows: Employee.objects.all(), id="no filter"),
    ],
)
def test_anything_else_still_gets_the_tenant_condition(rows, build):
    with state.for_corporation(rows.corp):
        queryset = build(rows)
        assert company_terms(queryset) >= 1
        assert set(emails(queryset)) <= {"a@x", "b@x"}


def test_a_pinned_queryset_follows_whoever_evaluates_it(rows):
    queryset = Employee.objects.filter(company_id=rows.a)
    with state.for_company(rows.a):
        assert emails(queryset.all()) == ["a@x"]
    with state.for_company(rows.c):
        assert emails(queryset.all()) == []
        assert company_terms(queryset) == 2
