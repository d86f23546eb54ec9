"""What a tenant queryset hands on to Django unchanged, and the join condition written only on Citus.

The tenant filter is the point of :mod:`cobee_django.managers`, but each override also passes the
caller's arguments on (batch sizes, ``raw()``'s parameters and translations, ``extra()``'s parts,
routing hints); a dropped one would be a silent behaviour change. The Citus join condition is
checked here by compiling against this database with the backend's Citus flag set.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cobee_django import state
from cobee_django.exceptions import TenantViolation
from cobee_django.managers import TenantQuerySet
from tests.testapp.models import Department, Employee


@pytest.fixture
def rows(tenants):
    made = SimpleNamespace(**vars(tenants))
    with state.unscoped():
        made.dept = Department.objects.create(company_id=tenants.a, name="a-dept")
        made.other_dept = Department.objects.create(company_id=tenants.b, name="b-dept")
        made.first = Employee.objects.create(company_id=tenants.a, email="a1@x", salary=1, department=made.dept)
        made.second = Employee.objects.create(company_id=tenants.a, email="a2@x", salary=2, department=made.dept)
        Employee.objects.create(company_id=tenants.b, email="b@x", salary=3, department=made.other_dept)
    return made


def statements(captured: CaptureQueriesContext, verb: str) -> int:
    return sum(query["sql"].lstrip().upper().startswith(verb) for query in captured.captured_queries)


def test_bulk_create_keeps_its_batch_size(rows):
    with state.for_company(rows.a), CaptureQueriesContext(connection) as captured:
        Employee.objects.bulk_create([Employee(email=f"n{i}@x") for i in range(3)], batch_size=1)
    assert statements(captured, "INSERT") == 3


def test_bulk_update_keeps_its_batch_size(rows):
    with state.for_company(rows.a):
        employees = list(Employee.objects.order_by("email"))
        for employee in employees:
            employee.salary += 10
        with CaptureQueriesContext(connection) as captured:
            assert Employee.objects.bulk_update(employees, ["salary"], batch_size=1) == 2
        assert statements(captured, "UPDATE") == 2
        assert sorted(Employee.objects.values_list("salary", flat=True)) == [11, 12]


def test_an_empty_filter_runs_no_query(rows, django_assert_num_queries):
    # Django skips a query it knows to be empty; the tenant's compile must not turn that into SQL.
    with state.for_company(rows.a), django_assert_num_queries(0):
        assert list(Employee.objects.filter(pk__in=[])) == []


def test_routing_hints_reach_the_queryset(rows):
    hints = {"instance": rows.first}
    assert TenantQuerySet(model=Employee, hints=hints)._hints == hints
    with state.for_company(rows.a):
        assert rows.dept.employees.all()._hints == {"instance": rows.dept}


def test_raw_inside_unscoped_keeps_its_parameters_translations_and_database(rows):
    sql = "SELECT id AS ident, email AS mail, company_id FROM testapp_employee WHERE email = %s"
    names = {"ident": "id", "mail": "email"}
    with state.unscoped():
        (found,) = Employee.objects.raw(sql, ["a2@x"], translations=names, using="default")
        # The database named in the call wins over the manager's (which does not exist here).
        (again,) = Employee.objects.db_manager("no-such-database").raw(sql, ["a1@x"], names, using="default")
    assert (found.pk, found.email) == (rows.second.pk, "a2@x")
    assert again.pk == rows.first.pk


def test_extra_refused_names_the_model(rows):
    with state.for_company(rows.a), pytest.raises(TenantViolation, match=r"^testapp\.Employee\.objects\.extra\(\)"):
        Employee.objects.extra(where=["1 = 1"])


def test_extra_inside_unscoped_keeps_every_part(rows):
    with state.unscoped():
        found = list(
            Employee.objects.extra(
                select={"twice": "salary * %s"},
                select_params=[2],
                where=["testapp_department.id = testapp_employee.department_id", "testapp_department.name = %s"],
                params=["a-dept"],
                tables=["testapp_department"],
                order_by=["-email"],
            )
        )
    assert [(e.email, e.twice) for e in found] == [("a2@x", 4), ("a1@x", 2)]


def with_column_and_parameters():
    """A bare column that carries parameters is not Django's own prefetch column (``Query.extra`` set
    directly: ``extra()`` drops the parameters of a select without placeholders)."""
    queryset = Employee.objects.all()
    queryset.query.extra["c"] = ('"testapp_employee"."email"', [1])
    return queryset


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Employee.objects.extra(order_by=["-salary"]), id="order_by only"),
        pytest.param(lambda: Employee.objects.extra(tables=["testapp_department"]), id="tables only"),
        pytest.param(with_column_and_parameters, id="column with parameters"),
    ],
)
def test_extra_sql_built_unscoped_is_refused_when_run_under_a_tenant(rows, build):
    with state.unscoped():
        queryset = build()
    with state.for_company(rows.a), pytest.raises(TenantViolation, match=r"testapp\.Employee\.objects\.extra\(\)"):
        list(queryset)


def join_sql(queryset) -> str:
    return str(queryset.query).replace("`", '"')


SAME_COMPANY = '"testapp_department"."company_id" = ("testapp_employee"."company_id")'


def test_joins_between_tenant_tables_name_the_company_on_citus_only(rows, monkeypatch):
    features = type(connection.features)  # the flag is a property of the Citus backend's features

    def flagged(value):
        monkeypatch.setattr(features, "is_citus", value, raising=False)
        return join_sql(queryset)

    with state.for_company(rows.a):
        queryset = Employee.objects.filter(department__name="a-dept")
        assert SAME_COMPANY not in flagged(False)
        assert SAME_COMPANY in flagged(True)
        assert sorted(e.email for e in queryset) == ["a1@x", "a2@x"]  # and the SQL runs
        # Only a backend that says True is Citus (not any truthy value a third-party backend may hold).
        assert SAME_COMPANY not in flagged("no")
