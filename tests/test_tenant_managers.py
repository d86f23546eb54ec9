"""Every manager of a tenant model is scoped at run time, whatever it was declared as (issue 20, item 2).

The models here are declared in an isolated registry over the test app's own tables (unmanaged), so
each case can declare its managers freely and still read real rows of two companies.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import models
from django.db.models import Manager, QuerySet
from django.test.utils import isolate_apps

from cobee_django import state
from cobee_django.checks import tenant_manager_warnings
from cobee_django.company_field import unscoped_rows
from cobee_django.exceptions import NoTenantBound
from cobee_django.managers import TenantManager, TenantQuerySet
from cobee_django.models import TenantModel
from tests.testapp.models import Department, Employee, Project


class PlainQuerySet(QuerySet):
    """A queryset of the project's own, not derived from TenantQuerySet."""

    def named(self, name: str) -> PlainQuerySet:
        return self.filter(name=name)


class PlainManager(Manager):
    """A manager whose get_queryset() builds a plain queryset itself."""

    def get_queryset(self) -> QuerySet:
        return QuerySet(model=self.model, using=self._db)


PlainFromQuerySet = Manager.from_queryset(PlainQuerySet)


@pytest.fixture
def rows(tenants):
    """A department with one employee and one project in company a, the same in company b."""
    made: dict[str, Any] = {}
    for key in ("a", "b"):
        company = getattr(tenants, key)
        with state.for_company(company):
            department = Department.objects.create(name=f"dept {key}")
            employee = Employee.objects.create(email=f"{key}@x.test", name=key, department=department)
            project = Project.objects.create(name=f"project {key}")
            employee.projects.add(project)
        made[key] = SimpleNamespace(department=department.pk, employee=employee.pk, project=project.pk)
    # b's employee also points at a's department and project: written past the guards, as a stale
    # or imported row would be, so that a related manager from a's side finds a row of b to leak.
    unscoped_rows(Employee).filter(pk=made["b"].employee).update(department_id=made["a"].department)
    through = Employee.projects.through
    through.objects.create(employee_id=made["b"].employee, project_id=made["a"].project)
    return SimpleNamespace(tenants=tenants, **made)


@pytest.fixture
def isolated() -> Iterator[None]:
    with isolate_apps("tests.testapp"):
        yield


def department_model(name: str = "Dept", **managers: Any) -> type[models.Model]:
    """A tenant model ``name`` over the departments table with ``managers`` declared on it."""
    meta = type("Meta", (), {"app_label": "testapp", "db_table": "testapp_department", "managed": False})
    attrs = {"__module__": __name__, "name": models.CharField(max_length=100), "Meta": meta, **managers}
    return type(name, (TenantModel,), attrs)


def names(queryset: Any) -> set[str]:
    return set(queryset.values_list("name", flat=True))


#: How a manager may be declared; each is the model's default manager and also an additional one.
DECLARATIONS: dict[str, Callable[[], Manager]] = {
    "models.Manager()": models.Manager,
    "Manager.from_queryset(PlainQuerySet)()": lambda: PlainFromQuerySet(),
    "PlainQuerySet.as_manager()": PlainQuerySet.as_manager,
    "get_queryset() building a QuerySet": PlainManager,
    "TenantManager()": TenantManager,
}


@pytest.mark.parametrize("declaration", DECLARATIONS)
def test_default_and_additional_managers_read_only_the_tenant(rows, isolated, declaration):
    make = DECLARATIONS[declaration]
    model: Any = department_model(objects=make(), everyone=make())
    with state.for_company(rows.tenants.a):
        for manager in (model.objects, model.everyone, model._default_manager, model._base_manager):
            assert names(manager.all()) == {"dept a"}
            assert manager.count() == 1
            assert manager.filter(name="dept b").exists() is False
    with state.for_company(rows.tenants.b):
        assert names(model.everyone.all()) == {"dept b"}
    with pytest.raises(NoTenantBound):
        list(model.everyone.all())  # fail closed with nothing bound, like every tenant manager
    with state.unscoped():
        assert names(model.everyone.all()) == {"dept a", "dept b"}  # reading every company is on purpose


def test_a_plain_querysets_own_methods_still_work_and_stay_scoped(rows, isolated):
    model: Any = department_model(objects=PlainQuerySet.as_manager(), other=PlainFromQuerySet())
    with state.for_company(rows.tenants.a):
        assert names(model.objects.named("dept b")) == set()
        assert names(model.other.named("dept a")) == {"dept a"}
        assert names(model.objects.all().named("dept b")) == set()
        assert model.objects.filter(name="dept b").update(name="moved") == 0
        assert model.objects.filter(name="dept b").delete()[0] == 0
    assert unscoped_rows(Department).filter(name="dept b").exists()


def test_managers_from_abstract_parents_and_mixins_are_scoped(rows, isolated):
    class Rows(models.Model):
        """A mixin (not a tenant model) that brings its own plain manager."""

        rows = models.Manager()

        class Meta:
            abstract = True

    class Base(TenantModel):
        objects = models.Manager()
        parents = PlainManager()

        class Meta:
            abstract = True

    class Child(Rows, Base):
        name = models.CharField(max_length=100)

        class Meta:
            app_label = "testapp"
            db_table = "testapp_department"
            managed = False

        def __str__(self) -> str:
            return self.name

    with state.for_company(rows.tenants.a):
        for manager in (Child.objects, Child.parents, Child.rows):  # type: ignore[attr-defined]
            assert names(manager.all()) == {"dept a"}


def test_an_unscoped_base_manager_name_is_scoped(rows, isolated):
    class Dept(TenantModel):
        name = models.CharField(max_length=100)
        plain = models.Manager()

        class Meta:
            app_label = "testapp"
            db_table = "testapp_department"
            managed = False
            base_manager_name = "plain"

    with state.for_company(rows.tenants.a):
        assert Dept._base_manager.name == "plain"
        assert names(Dept._base_manager.all()) == {"dept a"}
        # Django reads through the base manager for refresh_from_db(): b's row is not found.
        other = Dept(pk=rows.b.department)
        with pytest.raises(Dept.DoesNotExist):
            other.refresh_from_db()


def test_related_managers_built_from_plain_managers_are_scoped(rows, isolated):
    """Reverse foreign key, many-to-many (both sides) and forward foreign key, all from plain managers."""

    class Dept(TenantModel):
        name = models.CharField(max_length=100)
        objects = models.Manager()

        class Meta:
            app_label = "testapp"
            db_table = "testapp_department"
            managed = False

    class Proj(TenantModel):
        name = models.CharField(max_length=100)
        objects = PlainQuerySet.as_manager()

        class Meta:
            app_label = "testapp"
            db_table = "testapp_project"
            managed = False

    class Emp(TenantModel):
        email = models.CharField(max_length=100)
        name = models.CharField(max_length=100)
        department = models.ForeignKey(Dept, null=True, on_delete=models.DO_NOTHING, related_name="staff")
        projects = models.ManyToManyField(Proj, db_table="testapp_employee_projects", related_name="members")
        objects = PlainManager()

        class Meta:
            app_label = "testapp"
            db_table = "testapp_employee"
            managed = False

    # The auto-created through table's columns are named after the models of the test app.
    through: Any = Emp.projects.through
    through._meta.get_field("emp").column = "employee_id"
    through._meta.get_field("proj").column = "project_id"

    with state.for_company(rows.tenants.a):
        department = Dept.objects.get(pk=rows.a.department)
        assert names(department.staff.all()) == {"a"}  # b's employee points here too
        assert department.staff.count() == 1
        project = Proj.objects.get(pk=rows.a.project)
        assert names(project.members.all()) == {"a"}  # b's employee is linked to it too
        employee = Emp.objects.get(pk=rows.a.employee)
        assert names(employee.projects.all()) == {"project a"}
        assert names(Dept.objects.prefetch_related("staff")[0].staff.all()) == {"a"}
    with state.for_company(rows.tenants.b):
        employee = Emp.objects.get(pk=rows.b.employee)
        # The forward foreign key reads through the (scoped) base manager: a's department is not b's.
        with pytest.raises(Dept.DoesNotExist):
            employee.department  # noqa: B018


def test_a_manager_added_after_the_class_is_scoped(rows, isolated):
    model: Any = department_model()
    model.add_to_class("late", models.Manager())
    with state.for_company(rows.tenants.a):
        assert names(model.late.all()) == {"dept a"}


def test_scoped_copies_of_plain_querysets_pickle_and_chain(rows):
    from cobee_django._django import as_tenant_queryset

    with state.for_company(rows.tenants.a):
        queryset = as_tenant_queryset(PlainQuerySet(model=Department)).named("dept a")
        assert isinstance(queryset, TenantQuerySet) and isinstance(queryset, PlainQuerySet)
        loaded = pickle.loads(pickle.dumps(queryset))
        assert isinstance(loaded, TenantQuerySet) and isinstance(loaded, PlainQuerySet)
        assert names(loaded) == {"dept a"}
        assert (
            names(pickle.loads(pickle.dumps(as_tenant_queryset(PlainQuerySet(model=Department)))).named("dept b"))
            == set()
        )
        assert type(as_tenant_queryset(QuerySet(model=Department))) is TenantQuerySet


def test_migrations_see_the_declared_manager_classes(isolated):
    model: Any = department_model(objects=models.Manager(), plain=PlainManager(), qs=PlainQuerySet.as_manager())
    # What a migration records for each: exactly what the declared manager deconstructs to.
    assert model.objects.deconstruct() == models.Manager().deconstruct()
    assert model.plain.deconstruct() == PlainManager().deconstruct()
    assert model.plain.deconstruct()[1] == f"{__name__}.PlainManager"
    assert model.qs.deconstruct() == PlainQuerySet.as_manager().deconstruct()
    assert type(model.plain).__name__ == "PlainManager" and isinstance(model.plain, PlainManager)


def test_the_check_names_managers_not_declared_scoped(isolated):
    plain: Any = department_model(objects=models.Manager(), also=PlainManager())
    good: Any = department_model("Good", objects=TenantManager(), active=TenantManager.from_queryset(TenantQuerySet)())
    assert tenant_manager_warnings([good, Department, Employee]) == []
    warnings = tenant_manager_warnings([plain])
    assert [w.id for w in warnings] == ["cobee_django.W004", "cobee_django.W004"]
    assert "testapp.Dept.objects" in warnings[0].msg


def test_the_check_names_an_unscoped_base_manager_name(isolated):
    class Dept(TenantModel):
        name = models.CharField(max_length=100)
        objects = TenantManager()
        plain = models.Manager()

        class Meta:
            app_label = "testapp"
            db_table = "testapp_department"
            managed = False
            base_manager_name = "plain"

    assert [w.id for w in tenant_manager_warnings([Dept])] == ["cobee_django.W004"]
