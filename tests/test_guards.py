"""Every write path keeps rows and references inside the bound tenant."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F

from cobee_django import state
from cobee_django.exceptions import NoTenantBound, TenantViolation
from tests.testapp.models import Badge, Department, Employee, Note, Project


@pytest.fixture
def rows(tenants):
    with state.unscoped():
        for key in ("a", "b", "c"):
            company = getattr(tenants, key)
            setattr(tenants, f"{key}_dept", Department.objects.create(company_id=company, name="dept"))
            setattr(tenants, f"{key}_project", Project.objects.create(company_id=company, name="p"))
            setattr(tenants, f"{key}_emp", Employee.objects.create(company_id=company, email=f"{key}@x"))
    return tenants


@contextmanager
def refused(exc=TenantViolation, match=None):
    # The guard may fire inside Django's own atomic block: keep the test's transaction usable.
    with pytest.raises(exc, match=match) as info, transaction.atomic():
        yield info


def company_of(model, pk):
    with state.unscoped():
        return model.objects.get(pk=pk).company_id


# --- creating rows -------------------------------------------------------------------------------


def test_a_new_row_gets_the_one_bound_company(rows):
    with state.for_company(rows.a):
        dept = Department.objects.create(name="new")
        assert dept.company_id == rows.a
        assert Department(name="new2").save() is None
    assert company_of(Department, dept.pk) == rows.a


def test_with_a_corporation_bound_the_company_must_be_named_and_belong_to_it(rows):
    with state.for_corporation(rows.corp):
        with refused(TenantViolation, match="must name its company"):
            Department.objects.create(name="new")
        assert Department.objects.create(name="new", company_id=rows.b).company_id == rows.b
        with refused():
            Department.objects.create(name="new", company_id=rows.c)
    with state.unscoped():
        assert not Department.objects.filter(company_id=rows.c, name="new").exists()


@pytest.mark.parametrize("company", ["c", "random"])
def test_creating_a_row_outside_the_tenant_raises(rows, company):
    target = getattr(rows, company, uuid.uuid4())
    with state.for_company(rows.a):
        with refused():
            Department.objects.create(name="x", company_id=target)
        with refused():
            Department.objects.get_or_create(name="x", company_id=target)
        with refused():
            Department.objects.bulk_create([Department(name="y"), Department(name="x", company_id=target)])
    with state.unscoped():
        assert not Department.objects.filter(name__in=["x", "y"]).exists()


def test_bulk_create_assigns_the_bound_company(rows):
    with state.for_company(rows.a):
        created = Department.objects.bulk_create([Department(name="x"), Department(name="y")])
        assert {d.company_id for d in created} == {rows.a}
        assert Department.objects.count() == 3


def test_writes_with_no_tenant_bound_raise(rows):
    with pytest.raises(NoTenantBound):
        Department(name="x", company_id=rows.a).save()
    with pytest.raises(NoTenantBound):
        Department.objects.bulk_create([Department(name="x", company_id=rows.a)])
    with pytest.raises(NoTenantBound):
        Department.objects.update(name="x")
    with pytest.raises(NoTenantBound):
        rows.a_dept.delete()
    with pytest.raises(NoTenantBound):
        Note.objects.create(text="n", employee=rows.a_emp)


def test_unscoped_writes_must_still_name_the_company(rows):
    with state.unscoped():
        with refused(TenantViolation, match="inside unscoped"):
            Department.objects.create(name="x")
        assert Department.objects.create(name="x", company_id=rows.c).company_id == rows.c


# --- saving and moving existing rows -------------------------------------------------------------


@pytest.mark.usefixtures("not_on_citus")  # moves a row to another company
def test_moving_a_row_outside_the_tenant_raises(rows):
    with state.for_corporation(rows.corp):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.company_id = rows.c
        with refused():
            emp.save()
        emp.company_id = rows.b  # inside the corporation: allowed
        emp.save()
    assert company_of(Employee, rows.a_emp.pk) == rows.b


def test_saving_a_forged_instance_never_overwrites_another_company(rows):
    with state.for_company(rows.a):
        forged = Employee(pk=rows.c_emp.pk, company_id=rows.a, email="stolen@x")
        with refused():
            forged.save()
        forged = Employee(pk=rows.c_emp.pk, company_id=rows.a, email="stolen@x")
        with refused():
            forged.save(update_fields=["email"])
    with state.unscoped():
        assert Employee.objects.get(pk=rows.c_emp.pk).email == "c@x"


@pytest.mark.usefixtures("not_on_citus")  # moves a row to another company
def test_update_moves_only_inside_the_tenant(rows):
    with state.for_corporation(rows.corp):
        with refused():
            Employee.objects.filter(pk=rows.a_emp.pk).update(company=rows.c)
        with refused():
            Employee.objects.filter(pk=rows.a_emp.pk).update(company_id=str(rows.c))
        with refused():
            Employee.objects.update(company=F("company"))
        with refused():
            Employee.objects.update(company=None)
        assert Employee.objects.filter(pk=rows.a_emp.pk).update(company_id=rows.b) == 1
    assert company_of(Employee, rows.a_emp.pk) == rows.b


def test_update_touches_only_the_tenant_rows(rows):
    with state.for_company(rows.a):
        assert Employee.objects.update(name="renamed") == 1
    with state.unscoped():
        assert sorted(Employee.objects.values_list("name", flat=True)) == ["", "", "renamed"]


def test_bulk_update_guards_each_row(rows):
    with state.for_company(rows.a):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.company_id = rows.c
        with refused():
            Employee.objects.bulk_update([emp], ["company"])
        emp.company_id = rows.a
        emp.department_id = rows.c_dept.pk
        with refused():
            Employee.objects.bulk_update([emp], ["department"])
        emp.department_id = rows.a_dept.pk
        emp.name = "ok"
        assert Employee.objects.bulk_update([emp], ["department", "name"]) == 1
        forged = Employee(pk=rows.c_emp.pk, company_id=rows.a, email="c@x", name="stolen")
        assert Employee.objects.bulk_update([forged], ["name"]) == 0
    with state.unscoped():
        assert Employee.objects.get(pk=rows.c_emp.pk).name == ""
        assert Employee.objects.get(pk=rows.a_emp.pk).department_id == rows.a_dept.pk


# --- references ----------------------------------------------------------------------------------


def test_a_foreign_key_must_point_at_the_same_company(rows):
    with state.for_corporation(rows.corp):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.department_id = rows.b_dept.pk  # another company, even inside the corporation
        with refused():
            emp.save()
        emp.department = Department.objects.get(pk=rows.b_dept.pk)
        with refused():
            emp.save()
        emp.department_id = rows.a_dept.pk
        emp.save()
        with refused():
            Employee.objects.create(email="n@x", company_id=rows.a, department_id=rows.b_dept.pk)
        with refused():
            Badge.objects.bulk_create([Badge(company_id=rows.a, employee_id=rows.b_emp.pk, code="x")])
    with state.unscoped():  # an integrity rule: unscoped code cannot break it either
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.department_id = rows.c_dept.pk
        with refused():
            emp.save()


def test_a_forged_related_instance_is_checked_in_the_database(rows):
    with state.for_company(rows.a):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.department = Department(pk=rows.c_dept.pk, company_id=rows.a, name="forged")
        with refused():
            emp.save()


@pytest.mark.usefixtures("not_on_citus")  # moves a row to another company
def test_update_of_a_foreign_key_must_stay_in_the_company(rows):
    with state.for_corporation(rows.corp):
        with refused():
            Employee.objects.filter(pk=rows.a_emp.pk).update(department=rows.b_dept.pk)
        with refused():
            Employee.objects.update(department=rows.a_dept)  # b's employee too
        with refused():
            Employee.objects.update(department=F("department"))
        with refused():
            Employee.objects.filter(pk=rows.a_emp.pk).update(company=rows.b, department=rows.a_dept)
        assert Employee.objects.filter(pk=rows.a_emp.pk).update(department=rows.a_dept) == 1
        assert Employee.objects.filter(pk=rows.a_emp.pk).update(company=rows.b, department=rows.b_dept) == 1
        assert Employee.objects.update(department=None) == 2


def test_a_non_tenant_model_may_point_only_at_reachable_rows(rows):
    with state.for_corporation(rows.corp):
        Note.objects.create(text="ok", employee_id=rows.b_emp.pk)
        with refused():
            Note.objects.create(text="no", employee_id=rows.c_emp.pk)
    with state.unscoped():
        assert Note.objects.create(text="any", employee_id=rows.c_emp.pk).pk


def test_many_to_many_links_stay_in_the_company(rows):
    with state.for_corporation(rows.corp):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.projects.add(rows.a_project)
        with refused():
            emp.projects.add(rows.b_project)
        with refused():
            emp.projects.add(rows.c_project.pk)
        with refused():
            emp.projects.set([rows.a_project, rows.b_project])
        project = Project.objects.get(pk=rows.a_project.pk)
        with refused():
            project.members.add(rows.b_emp)  # the reverse side
        with refused():
            emp.projects.create(name="made", company_id=rows.b)
        note = Note.objects.create(text="n")
        note.watchers.add(rows.a_emp, rows.b_emp)
        with refused():
            note.watchers.add(rows.c_emp)
        assert [p.pk for p in emp.projects.all()] == [rows.a_project.pk]
    with state.unscoped():
        assert Employee.projects.through.objects.count() == 1


# --- deleting ------------------------------------------------------------------------------------


def test_deleting_another_companys_row_raises(rows):
    with state.for_company(rows.a):
        forged = Employee(pk=rows.c_emp.pk, company_id=rows.a)
        with refused():
            forged.delete()
        Employee.objects.get(pk=rows.a_emp.pk).delete()
    with state.unscoped():
        assert set(Employee.objects.values_list("email", flat=True)) == {"b@x", "c@x"}


# --- per-company unique constraints --------------------------------------------------------------


def test_per_company_unique_constraints_are_validation_errors(rows):
    with state.for_company(rows.a):
        with refused(ValidationError) as info:
            Department.objects.create(name="dept")
        assert "already exists" in str(info.value)
        with refused(ValidationError):
            Employee.objects.create(email="a@x")  # unique_together
        with refused(ValidationError):
            Department.objects.bulk_create([Department(name="x"), Department(name="x")])
        dept = Department.objects.get(pk=rows.a_dept.pk)
        dept.save()  # saving itself is not a duplicate
        Department.objects.bulk_create([Department(name="dept")], ignore_conflicts=True)
    with state.for_company(rows.c):
        assert Department.objects.create(name="other").name == "other"  # per company, not global
    with state.unscoped():
        assert Department.objects.filter(name="x").count() == 0


def test_upserts_collide_only_inside_the_company(rows):
    with state.for_company(rows.a):
        stolen = Employee(pk=rows.c_emp.pk, email="c@x", name="stolen")
        with refused(match="unique_fields that include the company"):
            Employee.objects.bulk_create([stolen], update_conflicts=True, unique_fields=["id"], update_fields=["name"])
        with refused(match="cannot update the company"):
            Employee.objects.bulk_create(
                [Employee(email="a@x")],
                update_conflicts=True,
                unique_fields=["company", "email"],
                update_fields=["company"],
            )
        if connection.features.supports_update_conflicts_with_target:
            Employee.objects.bulk_create(
                [Employee(email="a@x", name="upserted")],
                update_conflicts=True,
                unique_fields=["company", "email"],
                update_fields=["name"],
            )
            assert Employee.objects.get(email="a@x").name == "upserted"
        else:
            # MySQL/MariaDB cannot name the conflict target, so an upsert could hit any unique key
            # (another company's primary key included): refused before it reaches the database.
            with refused(match="unique_fields that include the company"):
                Employee.objects.bulk_create([Employee(email="a@x")], update_conflicts=True, update_fields=["name"])
    with state.unscoped():
        assert Employee.objects.get(pk=rows.c_emp.pk).name == ""


def test_a_reverse_foreign_key_add_cannot_pull_in_another_companys_rows(rows):
    with state.for_corporation(rows.corp):
        dept = Department.objects.get(pk=rows.a_dept.pk)
        dept.employees.add(Employee.objects.get(pk=rows.a_emp.pk))
        with refused():
            dept.employees.add(Employee.objects.get(pk=rows.b_emp.pk))  # same corporation, other company
        forged = Employee(pk=rows.c_emp.pk, company_id=rows.a)
        forged._state.adding = False
        forged._state.db = "default"
        with refused():
            dept.employees.add(forged)  # bulk: an update through Django's base manager
        with refused():
            dept.employees.add(Employee.objects.get(pk=rows.b_emp.pk), bulk=False)
        assert [e.pk for e in dept.employees.all()] == [rows.a_emp.pk]
    with state.unscoped():
        assert Employee.objects.get(pk=rows.c_emp.pk).department_id is None
        assert Employee.objects.get(pk=rows.b_emp.pk).department_id is None


# --- the guards' helpers and edges ----------------------------------------------------------------


def test_company_ids_are_read_from_uuids_their_string_form_and_rows(rows):
    from cobee_django import guards
    from cobee_django.models import Company

    assert guards._as_uuid(None) is None
    assert guards._as_uuid(rows.a) == rows.a
    assert guards._as_uuid(str(rows.a)) == rows.a
    assert guards._as_uuid(Company.objects.get(pk=rows.a)) == rows.a
    with pytest.raises(TenantViolation):
        guards._as_uuid("not-a-company")


def test_a_company_named_by_its_string_form_keeps_its_same_company_references(rows):
    with state.for_company(rows.a):
        emp = Employee.objects.create(email="s@x", company_id=str(rows.a), department_id=rows.a_dept.pk)
        assert emp.department_id == rows.a_dept.pk


def test_a_refused_company_is_named_in_the_refusal(rows):
    with state.for_company(rows.a), refused(match=f"cannot be written to company {rows.c}"):
        Department.objects.create(name="x", company_id=rows.c)


def test_a_new_row_without_company_says_why_it_needs_one(rows):
    with state.for_corporation(rows.corp), refused(match="must name its company when several companies are bound"):
        Department.objects.create(name="x")
    with state.unscoped(), refused(match="must name its company inside unscoped"):
        Department.objects.create(name="x")


def test_a_link_from_a_row_outside_the_tenant_is_refused_even_within_its_company(rows):
    with state.for_company(rows.a):
        with refused(match=f"cannot be written to company {rows.c}"):
            rows.c_emp.projects.add(rows.c_project)
        with refused():
            Department.objects.get(pk=rows.a_dept.pk)  # reachable, unlike:
            rows.c_dept.employees.add(rows.c_emp)
    with state.unscoped():
        assert not Employee.projects.through.objects.filter(employee_id=rows.c_emp.pk).exists()


def test_a_tenant_row_may_watch_non_tenant_rows(rows):
    with state.unscoped():
        note = Note.objects.create(text="n")
    with state.for_company(rows.a):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.watched_notes.add(note)  # the targets are no tenant rows: only the source is checked
        assert list(emp.watched_notes.all()) == [note]


def test_a_reverse_add_follows_the_same_company_rule_not_reachability(rows):
    with state.for_corporation(rows.corp):
        dept = Department.objects.get(pk=rows.a_dept.pk)
        with refused(match=r"testapp\.Employee\.department must point at rows of the same company"):
            dept.employees.add(Employee.objects.get(pk=rows.b_emp.pk))  # reachable, but another company


def test_a_reverse_add_leaves_unsaved_and_foreign_objects_to_django(rows):
    with state.for_company(rows.a):
        dept = Department.objects.get(pk=rows.a_dept.pk)
        with pytest.raises(ValueError, match="save the object first"):
            dept.employees.add(Employee(email="unsaved@x"))
        with pytest.raises(TypeError):
            dept.employees.add(5)


def test_removing_a_link_that_crosses_companies_is_never_refused(rows):
    from django.db.models import QuerySet

    through = Employee.projects.through
    QuerySet(model=through).create(employee_id=rows.a_emp.pk, project_id=rows.c_project.pk)  # an old, bad link
    with state.unscoped():
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.projects.remove(rows.c_project)
        assert not QuerySet(model=through).filter(employee_id=rows.a_emp.pk).exists()


def test_a_write_that_does_not_touch_a_reference_is_not_refused_for_it(rows):
    from django.db.models import QuerySet

    QuerySet(model=Employee).filter(pk=rows.a_emp.pk).update(department_id=rows.c_dept.pk)  # an old, bad reference
    with state.for_company(rows.a):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.name = "renamed"
        assert Employee.objects.bulk_update([emp], ["name"]) == 1


def test_an_update_from_an_expression_names_the_field(rows):
    with state.for_company(rows.a):
        with refused(match=r"testapp\.Employee\.company from an expression"):
            Employee.objects.update(company=F("company"))
        with refused(match=r"testapp\.Employee\.department from an expression"):
            Employee.objects.update(department=F("department"))


def test_an_update_checks_every_reference_after_a_missing_one(rows):
    from tests.testapp.models import Lead

    with state.for_company(rows.a):
        lead = Lead.objects.create(email="lead@x")
        with refused():
            Lead.objects.filter(pk=lead.pk).update(department_id=10**9, project_id=rows.c_project.pk)


def test_only_unique_constraints_that_include_the_company_are_checked_per_company():
    from types import SimpleNamespace

    from django.db.models import UniqueConstraint

    from cobee_django import guards

    per_company = UniqueConstraint(fields=["company", "name"], name="per_company")
    everywhere = UniqueConstraint(fields=["code"], name="everywhere")
    meta = SimpleNamespace(
        constraints=[per_company, everywhere],
        unique_together=[("code", "kind"), ("company_id", "email")],
        db_table="t",
        get_parent_list=list,
    )
    found = guards._find_unique_constraints(SimpleNamespace(_meta=meta))
    assert len(found) == 2 and found[0] is per_company
    assert found[1].fields == ("company_id", "email") and found[1].name == "t_unique_together_1"


def test_the_guards_read_the_database_the_write_goes_to(rows):
    # An unknown alias is refused by Django: a guard that read the default database would not notice it.
    from django.utils.connection import ConnectionDoesNotExist

    from cobee_django import guards

    with state.for_company(rows.a):
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.department_id = rows.a_dept.pk
        dept = Department.objects.get(pk=rows.a_dept.pk)
        field = Employee._meta.get_field("department")
        checks = [
            lambda: guards.check_delete(emp, "nowhere"),
            lambda: guards.check_reverse_add(dept, field, [emp], "nowhere"),
            lambda: guards.check_new_rows(Employee, [Employee(email="new@x")], "nowhere", validate_unique=True),
            lambda: guards.check_new_rows(
                Employee, [Employee(email="new@x", department_id=rows.a_dept.pk)], "nowhere", validate_unique=False
            ),
            lambda: guards.check_rows(Employee, [emp], "nowhere", ["department"]),
            lambda: guards.check_update(Employee.objects.using("nowhere").all(), {"department_id": 10**9}),
        ]
        raised = []
        for check in checks:
            try:
                check()
            except ConnectionDoesNotExist:
                raised.append(True)
            else:
                raised.append(False)
        assert raised == [True] * len(checks)


def test_every_lookup_of_a_guard_reads_the_database_of_the_write(rows, guard_lookup_aliases):
    with state.unscoped():
        rows.a_emp.department = rows.a_dept
        rows.a_emp.save()
        rows.a_emp.projects.add(rows.a_project)
        Badge.objects.create(company_id=rows.a, employee=rows.a_emp, code="a")
    with state.for_corporation(rows.corp):
        for model, pk in [
            (Employee, rows.a_emp.pk),
            (Department, rows.a_dept.pk),
            (Project, rows.a_project.pk),
        ]:
            with refused():
                model.objects.filter(pk=pk).update(company=rows.b)
        emp = Employee.objects.get(pk=rows.a_emp.pk)
        emp.company_id = rows.b
        with refused():
            emp.save()
        with refused():
            Employee.objects.bulk_update([emp], ["company"])
        emp.company_id = rows.a
        Employee.objects.bulk_update([emp], ["department"])
        Employee.objects.filter(pk=rows.a_emp.pk).update(department=rows.a_dept)
        Employee.objects.bulk_create([Employee(company_id=rows.a, email="bulk@x", department=rows.a_dept)])
        with refused(ValidationError):
            Employee.objects.create(company_id=rows.a, email="a@x")
        Department.objects.get(pk=rows.a_dept.pk).employees.add(emp)
        emp.projects.add(rows.a_project)
        Employee.objects.get(email="bulk@x").delete()
        Note.objects.create(text="n", employee_id=emp.pk)
    assert guard_lookup_aliases and set(guard_lookup_aliases) == {"default"}


def test_a_chosen_sequential_key_is_refused_naming_the_model(rows):
    with (
        state.for_company(rows.a),
        refused(match=r"^No testapp\.Employee row of the bound tenant has this primary key"),
    ):
        Employee(pk=10**6, email="chosen@x").save()


def test_only_keys_the_database_assigns_count_as_sequential():
    from types import SimpleNamespace

    from django.db import models

    from cobee_django import guards

    def model(pk):
        return SimpleNamespace(_meta=SimpleNamespace(pk=pk))

    assert guards.database_assigns_pk(model(models.BigAutoField(primary_key=True)))
    assert not guards.database_assigns_pk(model(models.UUIDField(primary_key=True, default=uuid.uuid4)))
    assert not guards.database_assigns_pk(model(models.CharField(primary_key=True, max_length=10)))


def test_a_conditional_unique_constraint_is_validated_by_django_on_the_write_database(rows, monkeypatch):
    from types import SimpleNamespace

    from cobee_django import guards

    calls: list[tuple] = []

    def validate(model, obj, using):
        calls.append((model, obj, using))
        if obj.name == "taken":
            raise ValidationError("taken")

    constraint = SimpleNamespace(fields=("company", "name"), condition=object(), expressions=(), validate=validate)
    monkeypatch.setattr(guards, "company_unique_constraints", lambda model: (constraint,))
    free, taken = Department(name="free"), Department(name="taken")
    guards.validate_company_unique(Department, [free], "other")
    guards.validate_company_unique(Department, [free], None)
    assert calls == [(Department, free, "other"), (Department, free, "default")]
    with pytest.raises(ValidationError) as info:
        guards.validate_company_unique(Department, [free, taken], "default")
    assert info.value.message_dict == {"__all__": ["taken"]}


def test_a_non_tenant_row_saving_other_fields_is_not_refused_for_an_old_reference(rows):
    with state.unscoped():
        note = Note.objects.create(text="old", employee_id=rows.c_emp.pk)  # written by unscoped code
    with state.for_company(rows.a):
        note = Note.objects.get(pk=note.pk)
        note.text = "edited"
        note.save(update_fields=["text"])
        with refused():
            note.save()


@pytest.mark.usefixtures("not_on_citus")  # moves rows to another company
def test_a_row_a_multi_column_foreign_object_points_at_moves_without_a_database_error(tenants):
    """A ``ForeignObject`` joined on the company too (zoo's ``Ref.owner``) cannot cross companies: a move
    ends the link. update(), save() and bulk_update() move such a row; none fails with a database error."""
    from tests.zooapp.models import Owner, Ref

    with state.for_corporation(tenants.corp):
        owners = [Owner.objects.create(company_id=tenants.a, tag=f"moving-{n}", code=f"x{n}") for n in range(3)]
        for owner in owners:
            Ref.objects.create(company_id=tenants.a, tag=f"ref-{owner.code}", code=owner.code)
        Owner.objects.filter(pk=owners[0].pk).update(company_id=tenants.b)
        owners[1].company_id = tenants.b
        owners[1].save()
        owners[2].company_id = tenants.b
        Owner.objects.bulk_update([owners[2]], ["company"])
        assert set(Owner.objects.filter(pk__in=[o.pk for o in owners]).values_list("company_id", flat=True)) == {
            tenants.b
        }
        assert Ref.objects.filter(company_id=tenants.a).count() == 3  # the links now end; nothing crossed


def test_a_null_in_a_per_company_unique_constraint_never_collides(rows):
    from cobee_django import guards

    with state.for_company(rows.a):
        unnamed = [Department(company_id=rows.a, name=None), Department(company_id=rows.a, name=None)]
        guards.validate_company_unique(Department, unnamed, None)  # neither with each other nor the table
        for batch in (
            [Department(company_id=rows.a, name="dept")],
            [*unnamed, Department(company_id=rows.a, name="dept")],
        ):
            with pytest.raises(ValidationError):  # and the rows after a NULL are still checked
                guards.validate_company_unique(Department, batch, None)
