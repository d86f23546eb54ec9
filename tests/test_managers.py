"""Every ORM read path of a tenant model stays inside the tenant bound when the query runs."""

from __future__ import annotations

import uuid
from functools import partial
from types import SimpleNamespace

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.test.utils import isolate_apps

from cobee_django import state
from cobee_django.exceptions import NoTenantBound
from tests.testapp.models import Badge, Department, Employee, Lead, Note, Project
from tests.testapp.views import EmployeeSerializer
from tests.zooapp.paths import every_path

ZOO_PATHS_WITH_NO_TENANT = [
    pytest.param(run, id=f"zoo:{path}:{how}")
    for path in every_path(max_hops=1)
    if path.touches_tenant
    for how, run in (
        ("values_list", partial(lambda p: list(p.model._default_manager.values_list(p.lookup)), path)),
        ("filter", partial(lambda p: p.model._default_manager.filter(**{p.lookup: "b:"}).exists(), path)),
        ("exclude", partial(lambda p: p.model._default_manager.exclude(**{p.lookup: "b:"}).count(), path)),
    )
]

# Built at import time, before any tenant exists: must filter by whoever evaluates it.
IMPORT_TIME_QUERYSET = Employee.objects.filter(salary__gte=0).order_by("email")


@pytest.fixture
def data(tenants):
    """Rows in companies a, b (same corporation) and c; plus cross-company links that only raw
    writes could make (the guards forbid them), to prove that reads do not follow them."""
    with state.unscoped():
        rows = SimpleNamespace(**vars(tenants))
        for key in ("a", "b", "c"):
            company = getattr(tenants, key)
            dept = Department.objects.create(company_id=company, name=f"{key}-dept")
            project = Project.objects.create(company_id=company, name=f"{key}-project")
            emp = Employee.objects.create(company_id=company, email=f"{key}@x", salary=10, department=dept)
            emp.projects.add(project)
            badge = Badge.objects.create(company_id=company, employee=emp, code=key)
            note = Note.objects.create(text=key, employee=emp)
            setattr(rows, f"{key}_dept", dept)
            setattr(rows, f"{key}_project", project)
            setattr(rows, f"{key}_emp", emp)
            setattr(rows, f"{key}_badge", badge)
            setattr(rows, f"{key}_note", note)
        # A stray employee of c sitting in a's department and on a's project (corrupt data).
        stray = Employee.objects.create(company_id=tenants.c, email="stray@x", salary=1000)
        QuerySet(model=Employee).filter(pk=stray.pk).update(department=rows.a_dept)
        Employee.projects.through.objects.create(employee=stray, project=rows.a_project)
        # a's employee pointing at c's department and project, a's badge on c's employee.
        QuerySet(model=Employee).filter(pk=rows.a_emp.pk).update(department=rows.c_dept)
        Employee.projects.through.objects.create(employee=rows.a_emp, project=rows.c_project)
        rows.stray = stray
    return rows


def emails(qs):
    return sorted(e.email for e in qs)


def test_reads_see_only_the_bound_company(data):
    with state.for_company(data.a):
        assert emails(Employee.objects.all()) == ["a@x"]
        assert Employee.objects.count() == 1
        assert Employee.objects.exists()
        assert not Employee.objects.filter(email="c@x").exists()
        assert Employee.objects.aggregate(total=Sum("salary")) == {"total": 10}
        assert list(Employee.objects.values_list("email", flat=True)) == ["a@x"]
        assert [row["email"] for row in Employee.objects.values("email")] == ["a@x"]
        assert emails(Employee.objects.iterator(chunk_size=1)) == ["a@x"]
        assert list(Employee.objects.in_bulk([data.a_emp.pk, data.c_emp.pk])) == [data.a_emp.pk]
        assert list(Employee.objects.in_bulk()) == [data.a_emp.pk]
        assert Employee.objects.first().email == "a@x"
        assert Employee.objects.get(pk=data.a_emp.pk).email == "a@x"
        with pytest.raises(Employee.DoesNotExist):
            Employee.objects.get(pk=data.c_emp.pk)
        assert Employee.objects.filter(pk=data.c_emp.pk).count() == 0
        assert Employee.objects.contains(data.a_emp)
        assert not Employee.objects.contains(data.c_emp)
        assert emails(Employee.objects.filter(email="a@x") | Employee.objects.filter(email="c@x")) == ["a@x"]
        assert emails(Employee.objects.filter(email="c@x").union(Employee.objects.all())) == ["a@x"]
        grouped = Employee.objects.values("company").annotate(n=Count("id"))
        assert [(row["company"], row["n"]) for row in grouped] == [(data.a, 1)]


def test_corporation_sees_each_of_its_companies(data):
    with state.for_corporation(data.corp):
        assert emails(Employee.objects.all()) == ["a@x", "b@x"]
        assert Employee.objects.count() == 2
        assert Employee.objects.aggregate(total=Sum("salary")) == {"total": 20}


def test_an_empty_tenant_sees_nothing(data):
    with state.for_tenant(state.Tenant(frozenset())):
        assert list(Employee.objects.all()) == []
        assert Employee.objects.count() == 0
        assert not Employee.objects.exists()
        assert Employee.objects.aggregate(total=Sum("salary")) == {"total": None}
        assert Employee.objects.update(salary=0) == 0
        assert Note.objects.filter(employee__in=Employee.objects.all()).count() == 0
        assert Note.objects.exclude(employee__in=Employee.objects.all()).count() == 3


def test_a_queryset_built_before_binding_filters_by_whoever_evaluates_it(data):
    with state.for_company(data.a):
        assert emails(IMPORT_TIME_QUERYSET.all()) == ["a@x"]
    with state.for_company(data.c):
        assert emails(IMPORT_TIME_QUERYSET.all()) == ["c@x", "stray@x"]
        assert IMPORT_TIME_QUERYSET.count() == 2
    # The same object, evaluated again (no result cache carried over between tenants above).
    qs = Employee.objects.all()
    with state.for_company(data.b):
        assert qs.count() == 1


def test_an_import_time_related_field_validates_against_the_requesting_tenant(data):
    with state.for_company(data.a):
        ok = EmployeeSerializer(data={"email": "n@x", "department": data.a_dept.pk})
        assert ok.is_valid(), ok.errors
        other = EmployeeSerializer(data={"email": "n@x", "department": data.c_dept.pk})
        assert not other.is_valid()
        assert "department" in other.errors


# An unscoped outer query over every company with a subquery correlated by department alone:
# Citus runs correlated subqueries only when they are correlated on the company (distribution) column.
@pytest.mark.usefixtures("not_on_citus")
def test_subqueries_stay_inside(data):
    with state.for_company(data.a):
        # A non-tenant model filtered by a tenant subquery.
        assert sorted(n.text for n in Note.objects.filter(employee__in=Employee.objects.all())) == ["a"]
        salaries = Employee.objects.filter(department=OuterRef("pk")).values("department").annotate(s=Sum("salary"))
        with state.unscoped():
            depts = list(Department.objects.order_by("name"))
        # Subquery(...) of a tenant model inside an unscoped outer query is still scoped when run.
        annotated = QuerySet(model=Department).annotate(total=Subquery(salaries.values("s")))
        totals = {d.name: d.total for d in annotated.order_by("name")}
        assert totals == {d.name: None for d in depts} | {"a-dept": None, "c-dept": 10}
        has_members = Department.objects.annotate(m=Exists(Employee.objects.filter(department=OuterRef("pk"))))
        assert [(d.name, d.m) for d in has_members] == [("a-dept", False)]


def test_reverse_foreign_keys_and_many_to_many_stay_inside(data):
    with state.for_company(data.a):
        dept = Department.objects.get(pk=data.a_dept.pk)
        assert emails(dept.employees.all()) == []  # only the stray (c) and nobody of a is in it
        assert dept.employees.count() == 0
        project = Project.objects.get(pk=data.a_project.pk)
        assert emails(project.members.all()) == ["a@x"]  # not the stray
        emp = Employee.objects.get(pk=data.a_emp.pk)
        assert [p.name for p in emp.projects.all()] == ["a-project"]  # not c's project
        assert emp.projects.count() == 1
        company = emp.company  # registry rows are not scoped
        assert emails(company.employee_set.all()) == ["a@x"]


def test_forward_foreign_keys_do_not_reveal_another_company(data):
    with state.for_company(data.a):
        emp = Employee.objects.get(pk=data.a_emp.pk)
        with pytest.raises(Department.DoesNotExist):
            emp.department  # noqa: B018  (points at c's department)
        note = Note.objects.get(pk=data.c_note.pk)  # Note is not scoped...
        with pytest.raises(Employee.DoesNotExist):
            note.employee  # noqa: B018  ...but the employee it points at is
        assert Note.objects.get(pk=data.a_note.pk).employee.email == "a@x"
        with pytest.raises(Badge.DoesNotExist):
            QuerySet(model=Employee).get(pk=data.c_emp.pk).badge  # noqa: B018  reverse one-to-one
        assert emp.badge.code == "a"
        assert Badge.objects.get(pk=data.a_badge.pk).employee.email == "a@x"


def test_prefetch_related_stays_inside(data):
    with state.for_company(data.a):
        depts = list(Department.objects.prefetch_related("employees"))
        assert [(d.name, emails(d.employees.all())) for d in depts] == [("a-dept", [])]
        emps = list(Employee.objects.prefetch_related("projects", "department"))
        assert [(e.email, [p.name for p in e.projects.all()], e.department) for e in emps] == [
            ("a@x", ["a-project"], None)
        ]
        projects = list(Project.objects.prefetch_related(Prefetch("members", queryset=IMPORT_TIME_QUERYSET)))
        assert [(p.name, emails(p.members.all())) for p in projects] == [("a-project", ["a@x"])]
        notes = list(Note.objects.order_by("text").prefetch_related("employee"))
        assert [(n.text, n.employee and n.employee.email) for n in notes] == [
            ("a", "a@x"),
            ("b", None),
            ("c", None),
        ]


def test_update_and_delete_stay_inside(data):
    with state.for_company(data.a):
        assert Employee.objects.update(salary=99) == 1
        # The private entry point Django's own saving uses when a scoped manager is the base manager.
        assert Employee.objects.all()._update([(Employee._meta.get_field("salary"), None, 99)]) == 1
        assert Employee.objects.filter(salary=10).delete()[0] == 0
        assert Badge.objects.all().delete() == (1, {"testapp.Badge": 1})  # fast-delete path
        assert Project.objects.all().delete()[0] >= 1  # collector path (m2m rows go too)
    with state.unscoped():
        assert sorted(Employee.objects.values_list("salary", flat=True)) == [10, 10, 99, 1000]
        assert Badge.objects.count() == 2
        assert Project.objects.count() == 2


def test_refresh_from_db_and_deferred_fields_are_scoped(data):
    with state.for_company(data.a):
        emp = Employee.objects.only("email").get(pk=data.a_emp.pk)
        assert emp.salary == 10  # deferred field loaded through a scoped query
        forged = Employee(pk=data.c_emp.pk)
        with pytest.raises(Employee.DoesNotExist):
            forged.refresh_from_db()


def test_exclude_across_a_relation_compiles(data):
    with state.for_company(data.a):
        assert [d.name for d in Department.objects.exclude(employees__email="nobody")] == ["a-dept"]
        assert emails(Employee.objects.exclude(projects__name="a-project")) == []


@pytest.mark.parametrize(
    "run",
    [
        lambda: list(Employee.objects.all()),
        lambda: Employee.objects.count(),
        lambda: Employee.objects.exists(),
        lambda: Employee.objects.aggregate(Sum("salary")),
        lambda: list(Employee.objects.values("email")),
        lambda: list(Employee.objects.iterator()),
        lambda: Employee.objects.in_bulk([1]),
        lambda: Employee.objects.update(salary=1),
        lambda: Employee.objects.all().delete(),
        lambda: Badge.objects.all().delete(),
        lambda: list(Note.objects.filter(employee__in=Employee.objects.all())),
        lambda: IMPORT_TIME_QUERYSET.first(),
        lambda: str(Employee.objects.all().query),
        # Querysets Django rebuilds or builds itself, through the (scoped) base manager.
        lambda: list(Employee.objects.order_by("-id")[:5] | Employee.objects.filter(salary=10)),
        lambda: (Employee.objects.all()[:5] | Employee.objects.all()).count(),
        lambda: (Employee.objects.all()[:5] ^ Employee.objects.all()).update(salary=1),
        lambda: (Employee.objects.all()[:5] | Employee.objects.all()).delete(),
        lambda: Employee._base_manager.count(),
        lambda: list(Employee.objects.raw("SELECT * FROM testapp_employee")),
        lambda: Employee.objects.extra(select={"top": "SELECT MAX(salary) FROM testapp_employee"}),
        lambda: QuerySet(model=Department).first().employees.extra(where=["1 = 1"]),
        lambda: list(Employee.objects.all().union(Employee.objects.all())),
        lambda: Employee.objects.get_or_create(email="x@x"),
        lambda: Employee(pk=1).refresh_from_db(),
        lambda: Note.objects.first().employee,
        lambda: list(Note.objects.prefetch_related("employee")),
        lambda: ContentType.objects.get_for_model(Employee).get_object_for_this_type(pk=1),
        lambda: Department._base_manager.first().delete(),
        lambda: list(Lead.objects.all()),
        lambda: Lead.objects.update(level=1),
        # The relation zoo (tests/zooapp): every one-hop lookup path that joins a tenant model, through
        # every relation kind in both directions, from tenant and plain models alike.
        *ZOO_PATHS_WITH_NO_TENANT,
    ],
)
def test_every_path_refuses_to_run_with_no_tenant(data, run):
    with pytest.raises(NoTenantBound):
        run()


def test_forward_foreign_key_with_no_tenant_refuses(data):
    note = Note.objects.get(pk=data.a_note.pk)
    with pytest.raises(NoTenantBound):
        note.employee  # noqa: B018


def test_unscoped_sees_everything(data):
    with state.unscoped():
        assert Employee.objects.count() == 4
        assert Note.objects.get(pk=data.c_note.pk).employee.email == "c@x"


def test_filters_use_the_company_column_directly(data):
    with state.for_company(data.a):
        sql = str(Employee.objects.all().query)
    assert 'WHERE "testapp_employee"."company_id" = ' in sql.replace("`", '"')
    assert "JOIN" not in sql
    with state.for_corporation(data.corp):
        sql = str(Employee.objects.all().query)
    assert '"testapp_employee"."company_id" IN (' in sql.replace("`", '"')


def test_data_migrations_use_plain_historical_models(data):
    with state.unscoped():
        Employee.objects.filter(pk=data.a_emp.pk).update(email="MIXED@X")
    executor = MigrationExecutor(connection)
    migration = executor.loader.get_migration("testapp", "0002_normalize_emails")
    historical = executor.loader.project_state(("testapp", "0002_normalize_emails")).apps
    # No tenant is bound here: a scoped manager would raise NoTenantBound.
    migration.operations[0].code(historical, None)
    with state.unscoped():
        assert Employee.objects.get(pk=data.a_emp.pk).email == "mixed@x"


def test_test_app_migrations_are_complete(db):
    call_command("makemigrations", "testapp", "--check", "--dry-run", verbosity=0)


def test_tenant_models_get_a_fresh_compile_per_tenant(data):
    qs = Employee.objects.all()
    for company, expected in ((data.a, 1), (data.c, 2), (uuid.uuid4(), 0)):
        with state.for_company(company):
            assert qs.count() == expected


def test_joins_stay_inside_the_tenant(data):
    # a's employee points at c's department; c's stray employee sits in a's department and project.
    with state.for_company(data.a):
        assert emails(Employee.objects.filter(department__name="c-dept")) == []
        assert [(e.email, e.department) for e in Employee.objects.select_related("department")] == [("a@x", None)]
        assert list(Employee.objects.values_list("email", "department__name")) == [("a@x", None)]
        assert list(Employee.objects.order_by("department__name").values_list("email", flat=True)) == ["a@x"]
        assert {d.name: d.n for d in Department.objects.annotate(n=Count("employees"))} == {"a-dept": 0}
        assert list(Department.objects.filter(employees__email="stray@x")) == []
        assert [d.name for d in Department.objects.exclude(employees__email="stray@x")] == ["a-dept"]
        assert list(Project.objects.filter(members__email="stray@x")) == []
        assert {p.name: p.n for p in Project.objects.annotate(n=Count("members__email"))} == {"a-project": 1}
        assert [(b.code, b.employee.email) for b in Badge.objects.select_related("employee")] == [("a", "a@x")]
        # A model that is not scoped still cannot reach into other companies' rows through a join.
        assert sorted(Note.objects.filter(employee__email__endswith="@x").values_list("text", flat=True)) == ["a"]
        notes = Note.objects.select_related("employee").order_by("text")
        assert [(n.text, n.employee and n.employee.email) for n in notes] == [("a", "a@x"), ("b", None), ("c", None)]
        assert sorted(Note.objects.values_list("employee__department__name", flat=True), key=str) == [None, None, None]
    with state.for_tenant(state.Tenant(frozenset())):
        assert [(n.text, n.employee) for n in Note.objects.select_related("employee").order_by("text")] == [
            ("a", None),
            ("b", None),
            ("c", None),
        ]


# Unscoped, a join follows the (corrupt) cross-company link; on Citus such a join, not matched on
# the company, would need repartitioning, which stays off: scoped joins match their companies.
@pytest.mark.usefixtures("not_on_citus")
def test_unscoped_joins_follow_any_link(data):
    with state.unscoped():
        assert emails(Employee.objects.filter(department__name="c-dept")) == ["a@x", "c@x"]
        assert Department.objects.annotate(n=Count("employees")).get(pk=data.a_dept.pk).n == 1


def test_joins_from_a_model_that_is_not_scoped_need_a_tenant(data):
    assert Note.objects.count() == 3  # no join into tenant rows: allowed
    with pytest.raises(NoTenantBound):
        list(Note.objects.filter(employee__email="a@x"))
    with pytest.raises(NoTenantBound):
        list(Note.objects.select_related("employee"))


def test_the_registry_does_not_reveal_other_companies_rows(data):
    from cobee_django.models import Company

    with state.for_company(data.a):
        assert list(Company.objects.filter(employee__email="c@x")) == []
        counts = {c.pk: c.n for c in Company.objects.annotate(n=Count("employee"))}
        assert counts[data.a] == 1 and counts[data.b] == 0 and counts[data.c] == 0
        assert list(Employee.objects.values_list("company__name", flat=True)) == ["Acme A"]


@isolate_apps("tests.testapp")
def test_a_manager_not_declared_scoped_on_a_tenant_model_is_named_by_the_checks():
    from django.db import models

    from cobee_django.checks import tenant_manager_warnings
    from cobee_django.managers import TenantManager, TenantQuerySet
    from cobee_django.models import TenantModel

    class ActiveQuerySet(TenantQuerySet):
        def active(self):
            return self.filter(name__gt="")

    class Good(TenantModel):
        name = models.CharField(max_length=10)
        active = TenantManager.from_queryset(ActiveQuerySet)()

        class Meta:
            app_label = "testapp"

    class Bad(TenantModel):
        name = models.CharField(max_length=10)
        objects = models.Manager()
        also_bad = models.Manager()

        class Meta:
            app_label = "testapp"

    assert tenant_manager_warnings([Good, Employee, Note]) == []
    warnings = tenant_manager_warnings([Bad])
    assert [w.id for w in warnings] == ["cobee_django.W004", "cobee_django.W004"]
    assert "testapp.Bad.objects is not declared scoped" in warnings[0].msg
