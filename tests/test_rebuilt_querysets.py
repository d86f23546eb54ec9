"""Querysets Django builds itself (through ``_base_manager``, related descriptors, the deletion
collector, contenttypes) stay inside the tenant, and raw SQL through a tenant manager is refused."""

from __future__ import annotations

from types import SimpleNamespace

import django
import pytest
from django.contrib.admin.utils import NestedObjects
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.test.utils import isolate_apps

from cobee_django import state
from cobee_django.checks import tenant_manager_warnings
from cobee_django.exceptions import NoTenantBound, TenantViolation
from cobee_django.managers import TenantQuerySet
from tests.testapp.models import Badge, Department, Employee, Note, Project


@pytest.fixture
def data(tenants):
    with state.unscoped():
        rows = SimpleNamespace(**vars(tenants))
        for key in ("a", "b", "c"):
            company = getattr(tenants, key)
            dept = Department.objects.create(company_id=company, name=f"{key}-dept")
            project = Project.objects.create(company_id=company, name=f"{key}-project")
            for n in range(2):
                emp = Employee.objects.create(company_id=company, email=f"{key}{n}@x", salary=10, department=dept)
                emp.projects.add(project)
                Note.objects.create(text=f"{key}{n}", employee=emp)
            Badge.objects.create(company_id=company, employee=emp, code=key)
            setattr(rows, f"{key}_dept", dept)
            setattr(rows, f"{key}_project", project)
            setattr(rows, f"{key}_emp", emp)
    return rows


def emails(rows):
    return sorted(row.email for row in rows)


A = ["a0@x", "a1@x"]


@pytest.mark.parametrize(
    "combine",
    [
        pytest.param(lambda: Employee.objects.order_by("-id")[:5] | Employee.objects.filter(salary=10), id="sliced|"),
        pytest.param(lambda: Employee.objects.filter(salary=10) | Employee.objects.order_by("-id")[:5], id="|sliced"),
        pytest.param(lambda: Employee.objects.order_by("-id")[:5] ^ Employee.objects.filter(salary=11), id="sliced^"),
        pytest.param(lambda: Employee.objects.filter(salary=11) ^ Employee.objects.order_by("id")[:5], id="^sliced"),
        pytest.param(lambda: Employee.objects.all()[:5] | Employee.objects.all()[:5], id="sliced|sliced"),
    ],
)
def test_combinators_with_a_sliced_operand_stay_inside(data, combine):
    if not connection.features.allow_sliced_subqueries_with_in:
        pytest.skip("the database cannot run the pk__in subquery Django rebuilds a sliced operand into")
    with state.for_company(data.a):
        combined = combine()
        assert emails(combined) == A
        assert combined.count() == 2
        assert sorted(combined.values_list("email", flat=True)) == A
        assert combined.update(salary=99) == 2
        assert combined.filter(salary=99).count() == 2
        assert combined.delete()[0] >= 2
    with state.unscoped():
        assert Employee.objects.filter(salary=99).count() == 0
        assert sorted(Employee.objects.values_list("email", flat=True)) == ["b0@x", "b1@x", "c0@x", "c1@x"]


def test_set_operations_on_either_side_stay_inside(data):
    with state.for_company(data.a):
        everyone = Employee.objects.all()
        sliced = Employee.objects.order_by("email")[:1]
        assert emails(everyone.union(everyone)) == A
        assert emails(everyone.intersection(everyone)) == A
        assert emails(everyone.difference(Employee.objects.filter(email="a0@x"))) == ["a1@x"]
        assert everyone.union(everyone, all=True).count() == 4
        assert emails(everyone.union(QuerySet(model=Employee).none())) == A
        if connection.features.supports_slicing_ordering_in_compound:
            assert emails(sliced.union(everyone)) == A
            assert emails(everyone.union(sliced)) == A
            assert emails(everyone.difference(sliced)) == ["a1@x"]
            assert sorted(everyone.values_list("email", flat=True).union(sliced.values_list("email", flat=True))) == A
        assert sorted(everyone.values("email").union(everyone.values("email")), key=str) == [
            {"email": "a0@x"},
            {"email": "a1@x"},
        ]


def test_django_builders_of_querysets_stay_inside(data):
    with state.for_company(data.a):
        assert list(Employee.objects.in_bulk([data.a_emp.pk, data.c_emp.pk])) == [data.a_emp.pk]
        obj, created = Employee.objects.get_or_create(email="c1@x", defaults={"salary": 1})
        assert created and obj.company_id == data.a  # c's c1@x is not seen, so a new a-row is made
        obj, created = Employee.objects.update_or_create(email="c0@x", defaults={"salary": 1})
        assert created and obj.company_id == data.a
        with transaction.atomic():
            assert emails(Employee.objects.select_for_update().filter(salary=10)) == A
        assert Employee.objects.aggregate(m=Max("salary"), s=Sum("salary")) == {"m": 10, "s": 22}
        assert emails(Employee.objects.iterator(chunk_size=1)) == [*A, "c0@x", "c1@x"]
        assert Employee.objects.filter(email__startswith="c").count() == 2  # only the two just made in a
        paginator = Paginator(Employee.objects.order_by("email"), 2)
        assert paginator.count == 4 and emails(paginator.page(2)) == ["c0@x", "c1@x"]
        # Subqueries of every kind.
        latest = Employee.objects.filter(department=OuterRef("pk")).order_by("-id").values("email")[:1]
        assert list(Department._base_manager.annotate(e=Subquery(latest)).values_list("name", "e")) == [
            ("a-dept", "a1@x")
        ]
        has = Exists(Employee.objects.filter(department=OuterRef("pk")))
        assert list(QuerySet(model=Department).filter(has).values_list("name", flat=True)) == ["a-dept"]
        assert Note.objects.filter(employee__in=Employee._base_manager.all()).count() == 2


def test_dates_and_datetimes_over_a_join_stay_inside(data):
    from django.utils import timezone

    from cobee_django.models import Company

    Company.objects.filter(pk=data.c).update(membership_asserted_at=timezone.now())
    with state.for_company(data.a):
        days = Company.objects.filter(employee__email="c0@x").datetimes("membership_asserted_at", "day")
        assert list(days) == []
        assert list(Company.objects.filter(employee__email="c0@x").dates("membership_asserted_at", "year")) == []


def test_related_descriptors_and_prefetches_stay_inside(data):
    with state.for_company(data.a):
        dept = Department.objects.get(pk=data.a_dept.pk)
        assert emails(dept.employees.all()) == A
        project = Project.objects.get(pk=data.a_project.pk)
        assert emails(project.members.all()) == A
        qs = Project.objects.prefetch_related(Prefetch("members", queryset=Employee._base_manager.order_by("email")))
        assert [(p.name, emails(p.members.all())) for p in qs] == [("a-project", A)]
        qs = Department.objects.prefetch_related(Prefetch("employees", queryset=Employee.objects.filter(salary=10)))
        assert [(d.name, emails(d.employees.all())) for d in qs] == [("a-dept", A)]
        notes = Note.objects.order_by("text").prefetch_related("employee")
        assert [(n.text, n.employee and n.employee.email) for n in notes][:3] == [
            ("a0", "a0@x"),
            ("a1", "a1@x"),
            ("b0", None),
        ]
        other = Note.objects.get(text="c0")
        with pytest.raises(Employee.DoesNotExist):
            other.employee  # noqa: B018
        forged = Employee(pk=data.c_emp.pk)
        with pytest.raises(Employee.DoesNotExist):
            forged.refresh_from_db()
        if django.VERSION >= (5, 1):  # refresh_from_db(from_queryset=...) is new in Django 5.1
            emp = Employee.objects.get(pk=data.a_emp.pk)
            emp.refresh_from_db(from_queryset=Employee.objects.all())
            with pytest.raises(Employee.DoesNotExist):
                forged.refresh_from_db(from_queryset=Employee._base_manager.all())


def test_the_base_manager_is_scoped_and_the_escape_hatch_is_a_plain_queryset(data):
    assert isinstance(Employee._base_manager.all(), TenantQuerySet)
    with pytest.raises(NoTenantBound):
        Employee._base_manager.count()
    with state.for_company(data.a):
        assert Employee._base_manager.count() == 2
        assert Employee._base_manager.filter(pk=data.c_emp.pk).update(salary=0) == 0
        assert Employee._base_manager.filter(pk=data.c_emp.pk).delete()[0] == 0
        assert QuerySet(model=Employee).count() == 6  # the documented escape hatch
    assert tenant_manager_warnings([Employee, Department, Badge]) == []


def test_contenttypes_and_foreign_key_validation_stay_inside(data):
    employee_type = ContentType.objects.get_for_model(Employee)
    with state.for_company(data.a):
        assert employee_type.get_object_for_this_type(pk=data.a_emp.pk).email == "a1@x"
        with pytest.raises(Employee.DoesNotExist):
            employee_type.get_object_for_this_type(pk=data.c_emp.pk)
        assert emails(employee_type.get_all_objects_for_this_type()) == A
        badge = Badge(employee_id=data.c_emp.pk, code="x", company_id=data.a)
        with pytest.raises(ValidationError) as caught:
            badge.full_clean()
        assert "employee" in caught.value.message_dict


def test_djangos_unique_checks_see_the_tenants_rows(data):
    with state.for_company(data.a):
        with pytest.raises(ValidationError):
            Employee(email="a0@x", company_id=data.a).validate_unique()  # unique_together
        with pytest.raises(ValidationError):
            Department(name="a-dept", company_id=data.a).validate_constraints()  # UniqueConstraint
        Employee(email="c0@x", company_id=data.a).validate_unique()  # c's employee is c's
        Department(name="c-dept", company_id=data.a).validate_constraints()


def test_the_deletion_collector_stays_inside_the_tenant(data):
    with state.for_company(data.a):
        collector = NestedObjects(using=DEFAULT_DB_ALIAS)
        collector.collect([Department.objects.get(pk=data.a_dept.pk)])
        collected = {obj for obj in collector.nested() if not isinstance(obj, list)}
        assert collected == {Department.objects.get(pk=data.a_dept.pk)}
        # SET_NULL cascades update only the tenant's rows.
        Department.objects.get(pk=data.a_dept.pk).delete()
        assert Employee.objects.filter(department__isnull=True).count() == 2
        Employee.objects.filter(pk=data.a_emp.pk).delete()  # cascades into the badge and the notes
    with state.unscoped():
        assert Employee.objects.filter(department__isnull=True).count() == 1
        assert Badge.objects.count() == 2
        assert Note.objects.count() == 5


def test_a_cascade_into_tenant_rows_with_nothing_bound_fails_closed(data):
    from cobee_django.models import Company

    company = Company.objects.create(name="empty")
    with pytest.raises(NoTenantBound):
        company.delete()  # the collector must look for the company's tenant rows (PROTECT)
    with state.unscoped():
        company.delete()


def test_serializers_dump_only_the_tenant(data):
    with state.for_company(data.a):
        dumped = serializers.serialize("python", Employee._base_manager.all())
        assert sorted(row["fields"]["email"] for row in dumped) == A
        assert all(row["fields"]["projects"] == [data.a_project.pk] for row in dumped)


def test_raw_sql_through_a_tenant_manager_is_refused(data):
    sql = "SELECT * FROM testapp_employee"
    with pytest.raises(NoTenantBound) as caught:
        list(Employee.objects.raw(sql))
    assert "unscoped()" in str(caught.value) and "QuerySet(model=testapp.Employee).raw" in str(caught.value)
    with state.for_company(data.a):
        with pytest.raises(TenantViolation):
            Employee.objects.raw(sql)
        with pytest.raises(TenantViolation):
            Employee._base_manager.raw(sql)
        with pytest.raises(TenantViolation):
            Employee.objects.filter(salary=1).raw(sql)
        assert len(list(QuerySet(model=Employee).raw(sql))) == 6  # the documented escape hatch
    with state.unscoped():
        assert len(list(Employee.objects.raw(sql))) == 6


def test_update_expressions_and_annotations_do_not_leak(data):
    with state.for_company(data.a):
        assert Employee.objects.update(salary=F("salary") + 1) == 2
        counts = Department.objects.annotate(n=Count("employees")).values_list("name", "n")
        assert list(counts) == [("a-dept", 2)]
    with state.unscoped():
        assert sorted(Employee.objects.values_list("salary", flat=True)) == [10, 10, 10, 10, 11, 11]


@isolate_apps("tests.testapp")
def test_a_base_manager_not_declared_scoped_is_named_by_the_checks():
    from django.db import models

    from cobee_django.managers import TenantManager
    from cobee_django.models import TenantModel

    class Plain(TenantModel):
        plain = models.Manager()

        class Meta:
            app_label = "testapp"
            base_manager_name = "plain"

    class Named(TenantModel):
        scoped = TenantManager()

        class Meta:
            app_label = "testapp"
            base_manager_name = "scoped"

    class Default(TenantModel):
        class Meta:
            app_label = "testapp"

    assert isinstance(Default._base_manager.all(), TenantQuerySet)
    assert Default._base_manager.auto_created  # never listed in _meta.managers, so never in migrations
    assert tenant_manager_warnings([Named, Default]) == []
    assert [e.id for e in tenant_manager_warnings([Plain])] == ["cobee_django.W004"]
    # A base manager swapped for a plain one behind the model's back is reported too.
    plain = models.Manager()
    plain.name, plain.model, plain.auto_created = "_base_manager", Default, True
    Default._meta.__dict__["base_manager"] = plain
    errors = tenant_manager_warnings([Default])
    assert [e.id for e in errors] == ["cobee_django.W004"]
    assert "base manager of testapp.Default" in errors[0].msg


def test_generic_foreign_keys_read_only_the_tenants_rows(data):
    from tests.testapp.models import Tag

    for key in ("a", "c"):
        Tag.objects.create(label=key, target=getattr(data, f"{key}_emp"))
    with state.for_company(data.a):
        tags = {tag.label: tag.target for tag in Tag.objects.all()}
        assert tags == {"a": Employee.objects.get(pk=data.a_emp.pk), "c": None}
        prefetched = {tag.label: tag.target for tag in Tag.objects.prefetch_related("target")}
        assert prefetched == tags
    with pytest.raises(NoTenantBound):
        Tag.objects.get(label="c").target  # noqa: B018
