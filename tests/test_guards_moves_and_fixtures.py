"""One rule for every write path: after any write, no reference between tenant rows crosses companies,
and raw saves (fixtures) stay inside the bound tenant."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction
from django.db.models import QuerySet

from cobee_django import state
from cobee_django.exceptions import NoTenantBound, TenantViolation
from tests.testapp.models import Badge, Department, Employee, Note, Project


@pytest.fixture
def rows(tenants):
    """In company a (and b, same corporation): a department with an employee in it, on a project, with a badge."""
    with state.unscoped():
        out = SimpleNamespace(**vars(tenants))
        for key in ("a", "b", "c"):
            company = getattr(tenants, key)
            dept = Department.objects.create(company_id=company, name=f"{key}-dept")
            project = Project.objects.create(company_id=company, name=f"{key}-project")
            emp = Employee.objects.create(company_id=company, email=f"{key}@x", department=dept)
            emp.projects.add(project)
            Badge.objects.create(company_id=company, employee=emp, code=key)
            lone = Employee.objects.create(company_id=company, email=f"{key}-lone@x")
            setattr(out, f"{key}_dept", dept)
            setattr(out, f"{key}_project", project)
            setattr(out, f"{key}_emp", emp)
            setattr(out, f"{key}_lone", lone)
    return out


@contextmanager
def refused(exc=TenantViolation):
    with pytest.raises(exc) as info, transaction.atomic():
        yield info


def companies(model):
    with state.unscoped():
        return {str(row): row.company_id for row in model.objects.all()}


def no_reference_crosses_companies():
    """The invariant itself, checked over every reference of the test app."""
    with state.unscoped():
        for emp in Employee.objects.all():
            if emp.department_id is not None:
                assert Department.objects.get(pk=emp.department_id).company_id == emp.company_id, emp
            for project in QuerySet(model=Project).filter(members=emp):
                assert project.company_id == emp.company_id, emp
        for badge in Badge.objects.all():
            assert Employee.objects.get(pk=badge.employee_id).company_id == badge.company_id, badge
    return True


MOVES = {
    "save": lambda r: _save(Employee, r.a_emp.pk, company_id=r.b),
    "save(update_fields=company)": lambda r: _save(Employee, r.a_emp.pk, ["company"], company_id=r.b),
    "update()": lambda r: Employee.objects.filter(pk=r.a_emp.pk).update(company=r.b),
    "update() of a referenced row": lambda r: Department.objects.filter(pk=r.a_dept.pk).update(company_id=r.b),
    "save() of a referenced row": lambda r: _save(Department, r.a_dept.pk, company_id=r.b),
    "update() of a linked project": lambda r: Project.objects.filter(pk=r.a_project.pk).update(company=r.b),
    "reverse manager update()": lambda r: Department.objects.get(pk=r.a_dept.pk).employees.update(company=r.b),
    "bulk_update()": lambda r: _bulk_update(r.a_emp.pk, r.b),
    "update_or_create()": lambda r: Employee.objects.update_or_create(email="a@x", defaults={"company_id": r.b}),
    "raw save (a fixture)": lambda r: _raw_save(Department, r.a_dept.pk, r.b),
}


def _raw_save(model, pk, company):
    obj = model.objects.get(pk=pk)
    obj.company_id = company
    model.save_base(obj, raw=True)


def _save(model, pk, update_fields=None, **values):
    obj = model.objects.get(pk=pk)
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save(update_fields=update_fields)


def _bulk_update(pk, company):
    emp = Employee.objects.get(pk=pk)
    emp.company_id = company
    Employee.objects.bulk_update([emp], ["company"])


@pytest.mark.parametrize("move", MOVES.values(), ids=MOVES.keys())
def test_a_move_that_would_leave_a_reference_across_companies_is_refused(rows, move):
    before = (companies(Employee), companies(Department), companies(Project), companies(Badge))
    with state.for_corporation(rows.corp), refused():
        move(rows)
    assert (companies(Employee), companies(Department), companies(Project), companies(Badge)) == before
    assert no_reference_crosses_companies()


def test_the_same_moves_inside_unscoped_are_refused_too(rows):
    with state.unscoped():
        with refused():
            Employee.objects.filter(pk=rows.a_emp.pk).update(company=rows.c)
        with refused():
            Department.objects.filter(pk=rows.a_dept.pk).update(company=rows.c)
    assert no_reference_crosses_companies()


def test_a_row_free_of_references_still_moves(rows):
    with state.for_corporation(rows.corp):
        assert Employee.objects.filter(pk=rows.a_lone.pk).update(company=rows.b) == 1
        lone = Employee.objects.get(pk=rows.b_lone.pk)
        lone.company_id = rows.a
        lone.save()
        # Moving a row together with what it points at, in the right order, is allowed.
        Badge.objects.filter(company_id=rows.a).delete()
        Employee.objects.filter(pk=rows.a_emp.pk).update(department=None)
        Employee.objects.get(pk=rows.a_emp.pk).projects.clear()
        assert Employee.objects.filter(pk=rows.a_emp.pk).update(company=rows.b) == 1
    assert companies(Employee)["a-lone@x"] == rows.b
    assert companies(Employee)["b-lone@x"] == rows.a
    assert no_reference_crosses_companies()


def test_a_move_out_of_the_tenant_is_refused_as_before(rows):
    with state.for_company(rows.a):
        with refused():
            Employee.objects.filter(pk=rows.a_lone.pk).update(company=rows.c)
        emp = Employee.objects.get(pk=rows.a_lone.pk)
        emp.company_id = rows.c
        with refused():
            emp.save()


# --- fixtures and raw saves ---------------------------------------------------------------------------


def fixture(tmp_path, rows_):
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(rows_))
    return str(path)


def employee_row(pk, company, email, department=None):
    return {
        "model": "testapp.employee",
        "pk": pk,
        "fields": {"company": str(company), "email": email, "name": "", "salary": 0, "department": department},
    }


def test_loaddata_under_a_tenant_cannot_write_another_companys_row(rows, tmp_path):
    path = fixture(tmp_path, [employee_row(9001, rows.c, "planted@x")])
    with refused():
        call_command("with_tenant", "--company", str(rows.a), "--", "loaddata", path, verbosity=0)
    with state.unscoped():
        assert not Employee.objects.filter(email="planted@x").exists()


def test_loaddata_under_a_tenant_cannot_overwrite_or_move_another_companys_row(rows, tmp_path):
    path = fixture(tmp_path, [employee_row(rows.c_lone.pk, rows.a, "stolen@x")])
    with refused():
        call_command("with_tenant", "--company", str(rows.a), "--", "loaddata", path, verbosity=0)
    with state.unscoped():
        assert Employee.objects.get(pk=rows.c_lone.pk).email == "c-lone@x"


def test_loaddata_under_a_tenant_cannot_point_across_companies(rows, tmp_path):
    planted = [
        employee_row(9002, rows.a, "pointing@x", department=rows.c_dept.pk),
        {"model": "testapp.note", "pk": 9003, "fields": {"text": "n", "employee": rows.c_emp.pk, "watchers": []}},
    ]
    for row in planted:
        with refused():
            call_command(
                "with_tenant", "--company", str(rows.a), "--", "loaddata", fixture(tmp_path, [row]), verbosity=0
            )
    with state.unscoped():
        assert not Employee.objects.filter(email="pointing@x").exists()
        assert not Note.objects.filter(pk=9003).exists()


def test_loaddata_of_the_tenants_own_rows_works(rows, tmp_path):
    path = fixture(tmp_path, [employee_row(9004, rows.a, "mine@x", department=rows.a_dept.pk)])
    call_command("with_tenant", "--company", str(rows.a), "--", "loaddata", path, verbosity=0)
    assert companies(Employee)["mine@x"] == rows.a


def test_loaddata_with_nothing_bound_fails_closed(rows, tmp_path):
    path = fixture(tmp_path, [employee_row(9005, rows.a, "nobody@x")])
    with refused(NoTenantBound):
        call_command("loaddata", path, verbosity=0)
    call_command("with_tenant", "--unscoped", "--", "loaddata", path, verbosity=0)
    assert companies(Employee)["nobody@x"] == rows.a


def test_a_raw_save_goes_through_the_guards(rows):
    planted = Employee(company_id=rows.c, email="raw@x")
    with state.for_company(rows.a), refused():
        Employee.save_base(planted, raw=True)
    with refused(NoTenantBound):
        Employee.save_base(planted, raw=True)


def test_a_multi_table_child_moves_only_with_its_references(rows):
    from tests.testapp.models import Lead

    with state.unscoped():
        lead = Lead.objects.create(company_id=rows.a, email="lead@x", project=rows.a_project)
        free = Lead.objects.create(company_id=rows.a, email="free-lead@x")
    with state.for_corporation(rows.corp):
        with refused():  # the child's own foreign key stays in a
            Employee.objects.filter(pk=lead.pk).update(company=rows.b)
        with refused():
            Lead.objects.filter(pk=lead.pk).update(company=rows.b)
        with refused(ValidationError):  # the parent's unique (company, email) holds for the child too
            Lead.objects.create(company_id=rows.a, email="a@x")
        assert Lead.objects.filter(pk=free.pk).update(company=rows.b) == 1
        moved = Lead.objects.get(pk=free.pk)
        moved.company_id = rows.a
        moved.save()  # its link to its own parent row is no reference across companies
        loaded = Lead.objects.get(pk=lead.pk)
        loaded.company_id = rows.b
        with refused():
            loaded.save()
    assert companies(Employee)["free-lead@x"] == rows.a
    assert companies(Employee)["lead@x"] == rows.a


def test_writing_over_another_companys_primary_key_never_names_that_company(rows):
    attempts = [
        lambda: Employee.objects.update_or_create(pk=rows.c_emp.pk, defaults={"email": "x@x"}),
        lambda: Employee(pk=rows.c_emp.pk, company_id=rows.a, email="x@x").save(),
        lambda: Employee.save_base(Employee(pk=rows.c_emp.pk, company_id=rows.a, email="x@x"), raw=True),
    ]
    for attempt in attempts:
        with state.for_company(rows.a), refused() as caught:
            attempt()
        assert str(rows.c) not in str(caught.value)
    assert companies(Employee)["c@x"] == rows.c


# --- each reference alone stops a move; references that move along do not ----------------------------


def _lone_with(rows, kind):
    """A row of company a whose one reference across a move to b is ``kind``; returns (model, pk)."""
    with state.unscoped():
        if kind == "its foreign key":
            return Employee, Employee.objects.create(company_id=rows.a, email="fk@x", department=rows.a_dept).pk
        # Keys no row of the other model has: a lookup in the wrong table finds nothing.
        if kind == "its many-to-many link":
            emp = Employee.objects.create(company_id=rows.a, email="m2m@x")
            emp.projects.add(Project.objects.create(pk=10**6, company_id=rows.a, name="far"))
            return Employee, emp.pk
        if kind == "a row pointing at it":
            dept = Department.objects.create(company_id=rows.a, name="pointed-at")
            Employee.objects.create(company_id=rows.a, email="pointing@x", department=dept)
            return Department, dept.pk
        if kind == "a one-to-one row pointing at it":
            emp = Employee.objects.create(company_id=rows.a, email="badged@x")
            Badge.objects.create(company_id=rows.a, employee=emp, code="badged")
            return Employee, emp.pk
        if kind == "a many-to-many link to it":
            project = Project.objects.create(company_id=rows.a, name="linked")
            Employee.objects.create(pk=10**6, company_id=rows.a, email="far@x").projects.add(project)
            return Project, project.pk
    raise AssertionError(kind)


KINDS = [
    "its foreign key",
    "its many-to-many link",
    "a row pointing at it",
    "a one-to-one row pointing at it",
    "a many-to-many link to it",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("write", ["update()", "save()", "save(update_fields=company)", "bulk_update()"])
def test_each_kind_of_reference_alone_stops_a_move(rows, kind, write):
    model, pk = _lone_with(rows, kind)
    with state.for_corporation(rows.corp), refused():
        if write == "update()":
            model.objects.filter(pk=pk).update(company=rows.b)
        elif write == "save()":
            _save(model, pk, company_id=rows.b)
        elif write == "save(update_fields=company)":
            _save(model, pk, ["company"], company_id=rows.b)
        else:
            obj = model.objects.get(pk=pk)
            obj.company_id = rows.b
            model.objects.bulk_update([obj], ["company"])
    with state.unscoped():
        assert model.objects.get(pk=pk).company_id == rows.a
    assert no_reference_crosses_companies()


def test_a_reference_written_by_the_move_itself_moves_along(rows):
    with state.for_corporation(rows.corp):
        fk = Employee.objects.filter(pk=rows.a_lone.pk)
        fk.update(department=rows.a_dept)
        assert fk.update(company=rows.b, department=rows.b_dept) == 1
        emp = Employee.objects.get(pk=rows.a_lone.pk)
        emp.company_id, emp.department_id = rows.a, rows.a_dept.pk
        Employee.objects.bulk_update([emp], ["company", "department"])
        emp.company_id, emp.department_id = rows.b, rows.b_dept.pk
        emp.save(update_fields=["company", "department"])
    assert companies(Employee)["a-lone@x"] == rows.b
    assert no_reference_crosses_companies()


def test_saving_other_fields_of_a_row_with_an_old_bad_reference_is_not_refused_for_it(rows):
    QuerySet(model=Employee).filter(pk=rows.a_lone.pk).update(department_id=rows.c_dept.pk)
    with state.for_company(rows.a):
        loaded = Employee.objects.get(pk=rows.a_lone.pk)
        loaded.name = "loaded"
        loaded.save(update_fields=["name"])
    with state.unscoped():
        built = Employee(pk=rows.a_lone.pk, company_id=rows.a, email="a-lone@x", name="built")
        built._state.adding = False  # a row known to exist, its company not known to this instance
        built.save(update_fields=["name"])
        assert Employee.objects.get(pk=rows.a_lone.pk).name == "built"


def test_a_row_with_a_uuid_key_moves_only_with_its_references(tenants):
    from tests.rlsapp.models import Member, Team

    with state.unscoped():
        team = Team.objects.create(company_id=tenants.a, name="pointed-at")
        Member.objects.create(company_id=tenants.a, name="member", team=team)
        free = Team.objects.create(company_id=tenants.a, name="free")
    with state.for_corporation(tenants.corp):
        loaded = Team.objects.get(pk=team.pk)
        loaded.company_id = tenants.b
        with refused():
            loaded.save()
        loaded = Team.objects.get(pk=free.pk)
        loaded.company_id = tenants.b
        loaded.save()
    with state.unscoped():
        assert Team.objects.get(pk=team.pk).company_id == tenants.a
        assert Team.objects.get(pk=free.pk).company_id == tenants.b


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        ("its foreign key", "their department is a row of another company"),
        ("its many-to-many link", r"they are linked \(projects\) with testapp\.Project rows of another company"),
        ("a row pointing at it", r"testapp\.Employee rows of another company point at them \(department\)"),
        ("a one-to-one row pointing at it", r"testapp\.Badge rows of another company point at them \(employee\)"),
        ("a many-to-many link to it", r"they are linked \(projects\) with testapp\.Employee rows of another company"),
    ],
)
def test_a_refused_move_names_the_reference_that_stops_it(rows, kind, named):
    model, pk = _lone_with(rows, kind)
    label = model._meta.label.replace(".", r"\.")
    expected = (
        rf"^{label} rows cannot change company while {named}: "
        r"a reference between tenant rows would cross companies\. Move or unlink those rows first\.$"
    )
    with state.for_corporation(rows.corp), refused() as caught:
        model.objects.filter(pk=pk).update(company=rows.b)
    assert re.match(expected, str(caught.value)), str(caught.value)


# --- rows named by their key rather than loaded: fixtures, hand-built instances, other key types ---------


def test_a_fixture_loaded_again_updates_its_rows(rows, tmp_path):
    # loaddata saves each row by its key: a row that exists is updated, not its own duplicate.
    rows_ = [employee_row(10**6, rows.a, "fixture@x", rows.a_dept.pk)]
    rows_.append(
        {"model": "testapp.department", "pk": rows.a_dept.pk, "fields": {"company": str(rows.a), "name": "a-dept"}}
    )
    path = fixture(tmp_path, rows_)
    with state.for_company(rows.a):
        call_command("loaddata", path, verbosity=0)
        call_command("loaddata", path, verbosity=0)
        assert Employee.objects.filter(email="fixture@x").count() == 1
        assert Department.objects.filter(name="a-dept").count() == 1


def test_a_hand_built_instance_naming_an_existing_row_moves_it_only_with_its_references(rows):
    # Django updates the row a chosen key names: with another company, that is a move.
    with state.unscoped():
        with refused():
            Department(pk=rows.a_dept.pk, company_id=rows.b, name="a-dept").save()  # an employee points at it
        assert Department.objects.get(pk=rows.a_dept.pk).company_id == rows.a
        lone = Department.objects.create(company_id=rows.a, name="lone")
        Department(pk=lone.pk, company_id=rows.b, name="lone").save()
        assert Department.objects.get(pk=lone.pk).company_id == rows.b


@pytest.fixture
def teams(tenants):
    """Rows with a UUID key the model chooses itself (rlsapp): a team with a member, and a free one."""
    from tests.rlsapp.models import Member, Team

    with state.unscoped():
        made = SimpleNamespace(**vars(tenants))
        made.team = Team.objects.create(company_id=tenants.a, name="pointed-at")
        Member.objects.create(company_id=tenants.a, name="member", team=made.team)
        made.free = Team.objects.create(company_id=tenants.a, name="free")
    return made


def test_a_raw_save_of_a_row_with_a_uuid_key_moves_it_only_with_its_references(teams):
    from tests.rlsapp.models import Team

    with state.for_corporation(teams.corp):
        with refused():
            Team.save_base(Team(pk=teams.team.pk, company_id=teams.b, name="moved"), raw=True)
        Team.save_base(Team(pk=teams.free.pk, company_id=teams.b, name="moved"), raw=True)
    with state.unscoped():
        assert Team.objects.get(pk=teams.team.pk).company_id == teams.a
        assert Team.objects.get(pk=teams.free.pk).company_id == teams.b


def test_update_moves_a_row_with_a_uuid_key_only_with_its_references(teams):
    # The key is not the first column of this model's table (the company is): moves are found by key.
    from tests.rlsapp.models import Team

    with state.for_corporation(teams.corp):
        with refused():
            Team.objects.filter(pk=teams.team.pk).update(company_id=teams.b)
        assert Team.objects.filter(pk=teams.free.pk).update(company_id=teams.b) == 1


def test_the_lookups_of_saves_and_moves_read_the_database_of_the_write(rows, guard_lookup_aliases):
    linked = _lone_with(rows, "its many-to-many link")[1]
    with state.for_corporation(rows.corp):
        emp = Employee.objects.get(pk=rows.a_lone.pk)
        emp.department_id = rows.a_dept.pk  # an id, not a loaded row: looked up
        emp.save()
        with refused():
            Employee.objects.filter(pk=linked).update(company_id=rows.b)
    assert guard_lookup_aliases and set(guard_lookup_aliases) == {"default"}
