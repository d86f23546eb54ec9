"""CompanyRelatedField: a reference to another company's row is a 400 by construction.

The test project's EmployeeSerializer uses it for ``modelId`` (tests/test_api.py's "model of a sibling
company" cases); here each source of the company is pinned: the row being updated, the URL, the tenant.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

from cobee_django import state
from cobee_django.exceptions import NoTenantBound
from cobee_django.serializers import CompanyRelatedField
from tests.testapp.models import Department, Note


class Assignment(serializers.Serializer):
    department = CompanyRelatedField(queryset=Department.objects.all())


@pytest.fixture
def departments(tenants):
    made = {}
    for key in ("a", "b", "c"):
        with state.for_company(getattr(tenants, key)):
            made[key] = Department.objects.create(name=f"Dept {key}")
    return SimpleNamespace(**made)


def errors_for(department_pk, *, url_company=None, instance=None):
    view = SimpleNamespace(kwargs={"companyId": str(url_company)} if url_company is not None else {})
    serializer = Assignment(instance=instance, data={"department": str(department_pk)}, context={"view": view})
    serializer.is_valid()
    return {name: [e.code for e in errs] for name, errs in serializer.errors.items()}


def test_the_url_company_limits_the_choices_even_for_a_corporation(tenants, departments):
    with state.for_corporation(tenants.corp):  # reaches a and b
        assert errors_for(departments.a.pk, url_company=tenants.a) == {}
        assert errors_for(departments.b.pk, url_company=tenants.a) == {"department": ["does_not_exist"]}
        assert errors_for(departments.c.pk, url_company=tenants.a) == {"department": ["does_not_exist"]}


def test_without_a_company_in_the_url_the_tenant_limits_them(tenants, departments):
    with state.for_corporation(tenants.corp):
        assert errors_for(departments.b.pk) == {}
        assert errors_for(departments.c.pk) == {"department": ["does_not_exist"]}


def test_an_update_keeps_to_the_rows_company(tenants, departments):
    with state.for_corporation(tenants.corp):
        existing = Department.objects.get(pk=departments.b.pk)
        assert errors_for(departments.a.pk, instance=existing) == {"department": ["does_not_exist"]}
        assert errors_for(departments.b.pk, instance=existing) == {}


def test_nothing_bound_fails_closed_and_unscoped_offers_everything(tenants, departments):
    with pytest.raises(NoTenantBound):
        errors_for(departments.a.pk)
    with state.unscoped():
        assert errors_for(departments.c.pk) == {}


@pytest.mark.parametrize("value", ["not-a-number", "1.5", "", "[1]"])
def test_a_malformed_key_is_a_400_not_a_500(tenants, departments, value):
    with state.for_company(tenants.a):
        assert errors_for(value, url_company=tenants.a) != {}


def test_a_malformed_url_company_offers_nothing(tenants, departments):
    with state.for_company(tenants.a):
        assert errors_for(departments.a.pk, url_company="nope") == {"department": ["does_not_exist"]}


def test_it_needs_a_tenant_model(tenants):
    class Wrong(serializers.Serializer):
        note = CompanyRelatedField(queryset=Note.objects.all())

    with state.for_company(tenants.a), pytest.raises(ImproperlyConfigured):
        Wrong(data={"note": "1"}, context={}).is_valid()
