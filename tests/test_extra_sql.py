"""``extra()`` on a tenant queryset is refused the way ``raw()`` is: its SQL is yours and reads any table.

With nothing bound it is ``NoTenantBound``, under a tenant ``TenantViolation``; inside ``unscoped()``
it runs. Every way to reach it is covered: the manager, a queryset, the base manager, related
managers, a chain, a queryset built in ``unscoped()`` and run later, ``Query.add_extra()`` itself and
a subquery carrying it.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Prefetch, QuerySet

from cobee_django import state
from cobee_django.exceptions import NoTenantBound, TenantViolation
from tests.testapp.models import Department, Employee, Lead, Note, Project

#: The issue's reproduction: a select reading every company's salaries.
EVERY_SALARY = {"top": "SELECT MAX(salary) FROM testapp_employee"}


@pytest.fixture
def rows(tenants):
    with state.unscoped():
        made = SimpleNamespace(**vars(tenants))
        for key, salary in (("a", 10), ("b", 5000)):
            company = getattr(tenants, key)
            dept = Department.objects.create(company_id=company, name=f"{key}-dept")
            project = Project.objects.create(company_id=company, name=f"{key}-project")
            emp = Employee.objects.create(company_id=company, email=f"{key}@x", salary=salary, department=dept)
            emp.projects.add(project)
            Note.objects.create(text=key, employee=emp)
            setattr(made, f"{key}_dept", dept)
            setattr(made, f"{key}_project", project)
            setattr(made, f"{key}_emp", emp)
    return made


def ways_to_extra(rows):
    """Each way to reach ``extra()`` on a tenant queryset, as (name, callable building the queryset)."""
    with state.unscoped():
        dept = Department.objects.get(pk=rows.a_dept.pk)
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        project = Project.objects.get(pk=rows.a_project.pk)
    return [
        ("manager", lambda: Employee.objects.extra(select=EVERY_SALARY)),
        ("queryset", lambda: Employee.objects.all().extra(select=EVERY_SALARY)),
        ("chained", lambda: Employee.objects.filter(salary__gte=0).extra(where=["1=1"]).values("email")),
        ("after values", lambda: Employee.objects.values("email").extra(select=EVERY_SALARY)),
        ("tables", lambda: Employee.objects.extra(tables=["testapp_project"])),
        ("order_by", lambda: Employee.objects.extra(order_by=["-salary"])),
        ("base manager", lambda: Employee._base_manager.extra(select=EVERY_SALARY)),
        ("reverse foreign key", lambda: dept.employees.extra(select=EVERY_SALARY)),
        ("many-to-many", lambda: emp.projects.extra(select=EVERY_SALARY)),
        ("reverse many-to-many", lambda: project.members.extra(select=EVERY_SALARY)),
        ("multi-table child", lambda: Lead.objects.extra(select=EVERY_SALARY)),
        ("prefetch queryset", lambda: Prefetch("employees", queryset=Employee.objects.extra(select=EVERY_SALARY))),
    ]


def test_extra_is_refused_with_nothing_bound_and_under_a_tenant(rows):
    ways = ways_to_extra(rows)
    assert len(ways) == 12
    for name, build in ways:
        with pytest.raises(NoTenantBound, match="extra"):
            build()
        with state.for_company(rows.a), pytest.raises(TenantViolation, match="extra"):
            build()
        with state.for_corporation(rows.corp), pytest.raises(TenantViolation, match="extra"):
            build()
        with state.unscoped():
            build()  # on purpose: allowed, like raw()
        assert name


def test_the_issues_reproduction_no_longer_reads_other_companies(rows):
    with state.for_company(rows.a):
        with pytest.raises(TenantViolation):
            Employee.objects.extra(select=EVERY_SALARY).values_list("top", flat=True).first()
        # The scoped way to the same question answers from the tenant's rows only.
        assert Employee.objects.order_by("-salary").values_list("salary", flat=True).first() == 10
    with state.unscoped():
        assert Employee.objects.extra(select=EVERY_SALARY).values_list("top", flat=True).first() == 5000


def test_a_queryset_with_extra_built_unscoped_is_refused_when_run_under_a_tenant(rows):
    with state.unscoped():
        built = Employee.objects.extra(select=EVERY_SALARY)
        subquery = Employee.objects.extra(where=["salary > 0"]).values("pk")
        assert built.count() == 2
    with state.for_company(rows.a):
        with pytest.raises(TenantViolation):
            list(built)
        with pytest.raises(TenantViolation):
            subquery.count()  # (count() drops extra selects, so it never runs their SQL; not extra WHEREs)
        with pytest.raises(TenantViolation):
            list(built.values_list("top", flat=True))
        with pytest.raises(TenantViolation):
            # A plain model's query with the tenant subquery inside it.
            list(Note.objects.filter(employee__in=subquery))
    with pytest.raises(NoTenantBound):
        list(built)


def test_add_extra_on_the_query_itself_is_refused_when_compiled(rows):
    qs = Employee.objects.all()
    qs.query.add_extra({"top": EVERY_SALARY["top"]}, None, None, None, None, None)
    with state.for_company(rows.a), pytest.raises(TenantViolation):
        list(qs)
    where = Employee.objects.all()
    where.query.add_extra(None, None, ["1=1"], None, None, None)
    with state.for_company(rows.a), pytest.raises(TenantViolation):
        where.count()


def test_plain_querysets_and_plain_models_keep_extra(rows):
    # A plain QuerySet(model=...) lifts scoping on purpose; a model that is not a tenant model is not
    # scoped: in both the SQL is yours (docs/security.md, "not covered").
    with state.for_company(rows.a):
        assert QuerySet(model=Employee).extra(select=EVERY_SALARY).values_list("top", flat=True).first() == 5000
        assert sorted(Note.objects.extra(where=["text <> ''"]).values_list("text", flat=True)) == ["a", "b"]


def test_scoped_reads_after_the_refusal_still_work(rows):
    # The empty-tenant condition is not mistaken for extra() SQL.
    with state.for_tenant(state.Tenant(frozenset())):
        assert list(Employee.objects.all()) == []
        assert list(Department.objects.exclude(employees__email="a@x")) == []
        assert list(Note.objects.filter(employee__email="a@x")) == []
    with state.for_company(rows.a):
        assert [d.name for d in Department.objects.exclude(employees__email="nobody")] == ["a-dept"]


def test_a_bare_column_reference_is_not_sql_of_its_own(rows):
    # Django's many-to-many prefetch selects the through table's column through extra(): it reads only
    # a table the query already joins, under that join's tenant condition.
    quote = connection.ops.quote_name
    column = {"pay": f"{quote('testapp_employee')}.{quote('salary')}"}
    with state.for_company(rows.a):
        assert list(Employee.objects.extra(select=column).values_list("pay", flat=True)) == [10]
        emps = Employee.objects.prefetch_related("projects")
        assert [(e.email, [p.name for p in e.projects.all()]) for e in emps] == [("a@x", ["a-project"])]
        with pytest.raises(TenantViolation):
            Employee.objects.extra(select={"pay": column["pay"] + " + 0"})
        with pytest.raises(TenantViolation):
            Employee.objects.extra(select=column, tables=["testapp_project"])
