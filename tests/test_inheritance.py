"""A multi-table child of a tenant model is scoped through its parent's company."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Count, QuerySet

from cobee_django import state
from cobee_django.exceptions import NoTenantBound, TenantViolation
from tests.testapp.models import Employee, Lead, Note, Project


@pytest.fixture
def leads(tenants):
    with state.unscoped():
        rows = SimpleNamespace(**vars(tenants))
        for key in ("a", "b", "c"):
            company = getattr(tenants, key)
            project = Project.objects.create(company_id=company, name=f"{key}-project")
            lead = Lead.objects.create(company_id=company, email=f"{key}-lead@x", level=2, project=project)
            Employee.objects.create(company_id=company, email=f"{key}@x")
            Note.objects.create(text=key, employee=lead)
            setattr(rows, f"{key}_lead", lead)
            setattr(rows, f"{key}_project", project)
    return rows


def emails(rows):
    return sorted(row.email for row in rows)


def test_reads_of_the_child_stay_inside(leads):
    with state.for_company(leads.a):
        assert emails(Lead.objects.all()) == ["a-lead@x"]
        assert Lead.objects.count() == 1
        assert Lead.objects.filter(level=2).exists()
        assert list(Lead.objects.values_list("email", "level")) == [("a-lead@x", 2)]
        assert Lead.objects.get(pk=leads.a_lead.pk).level == 2
        with pytest.raises(Lead.DoesNotExist):
            Lead.objects.get(pk=leads.c_lead.pk)
        assert list(Lead.objects.in_bulk([leads.a_lead.pk, leads.c_lead.pk])) == [leads.a_lead.pk]
        assert emails(Lead.objects.select_related("project")) == ["a-lead@x"]
        if connection.features.allow_sliced_subqueries_with_in:
            assert emails(Lead.objects.order_by("-id")[:5] | Lead.objects.filter(level=2)) == ["a-lead@x"]
        assert emails(Lead.objects.filter(level=2).union(Lead.objects.all())) == ["a-lead@x"]
        assert [p.name for p in Project.objects.filter(leads__level=2)] == ["a-project"]
        assert {p.name: p.n for p in Project.objects.annotate(n=Count("leads"))} == {"a-project": 1}
    with state.for_corporation(leads.corp):
        assert emails(Lead.objects.all()) == ["a-lead@x", "b-lead@x"]


def test_the_child_joined_twice_in_one_query_is_scoped_on_each_alias(leads):
    # Each join's condition names its own alias of the child's table (a bare column would be ambiguous).
    with state.unscoped():
        Lead.objects.create(company_id=leads.a, email="a-second@x", level=3, project=leads.a_project)
    with state.for_company(leads.a):
        assert emails(Lead.objects.filter(project__leads__level=3)) == ["a-lead@x", "a-second@x"]
        assert emails(Lead.objects.filter(project__leads__level=2, level=3)) == ["a-second@x"]


def test_the_parents_reverse_one_to_one_and_joins_into_the_child_stay_inside(leads):
    with state.for_company(leads.a):
        assert Employee.objects.get(pk=leads.a_lead.pk).lead.level == 2
        with pytest.raises(Lead.DoesNotExist):
            QuerySet(model=Employee).get(pk=leads.c_lead.pk).lead  # noqa: B018
        assert emails(Employee.objects.filter(lead__level=2)) == ["a-lead@x"]
        assert [(e.email, getattr(e, "lead", None) is not None) for e in Employee.objects.order_by("email")] == [
            ("a-lead@x", True),
            ("a@x", False),
        ]
        # A model that is not scoped reaches the child only inside the tenant.
        assert sorted(Note.objects.filter(employee__lead__level=2).values_list("text", flat=True)) == ["a"]


def test_writes_of_the_child_stay_inside(leads):
    with state.for_company(leads.a):
        assert Lead.objects.update(level=7) == 1
        assert Lead.objects.update(salary=5) == 1  # a parent's field, through the parent table
        lead = Lead.objects.get(pk=leads.a_lead.pk)
        lead.level = 8
        lead.save()
        created = Lead.objects.create(email="new-lead@x", level=1)
        assert created.company_id == leads.a
        forged = Lead(pk=leads.c_lead.pk, employee_ptr_id=leads.c_lead.pk, company_id=leads.a, email="x@x")
        forged._state.adding = False
        with pytest.raises(TenantViolation):
            forged.save()
        with pytest.raises(TenantViolation):
            Lead.objects.create(company_id=leads.c, email="out@x")
    with state.unscoped():
        assert sorted(Lead.objects.values_list("email", "level", "salary")) == [
            ("a-lead@x", 8, 5),
            ("b-lead@x", 2, 0),
            ("c-lead@x", 2, 0),
            ("new-lead@x", 1, 0),
        ]


def test_deletes_of_the_child_stay_inside(leads):
    with state.for_company(leads.a):
        assert Lead.objects.filter(level=2).delete()[1].get("testapp.Lead") == 1
        with pytest.raises(TenantViolation):
            Lead(pk=leads.c_lead.pk, employee_ptr_id=leads.c_lead.pk, company_id=leads.c).delete()
    with state.unscoped():
        assert emails(Lead.objects.all()) == ["b-lead@x", "c-lead@x"]
        assert Employee.objects.filter(email="a-lead@x").count() == 0
        assert Employee.objects.count() == 5


def test_the_child_refuses_to_run_with_no_tenant(leads):
    with pytest.raises(NoTenantBound):
        list(Lead.objects.all())
    with pytest.raises(NoTenantBound):
        Lead.objects.update(level=1)
