"""ORM paths an attacker's-eye review named after the join restriction and manager scoping landed:
reverse values() from a plain model, subqueries and aggregates over tenant rows, select_for_update(of=),
union with a plain model, in_bulk, iterator, alias, Prefetch(to_attr), dates/datetimes, and async
reads. Under a bound tenant each reads that tenant's rows only; with nothing bound each fails closed."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction
from django.db.models import Count, F, FilteredRelation, Max, OuterRef, Prefetch, Q, Subquery, Sum

from cobee_django import state
from cobee_django.exceptions import NoTenantBound
from cobee_django.models import Company
from tests import test_rebuilt_querysets as rebuilt
from tests.testapp.models import Department, Employee, Note

A, emails = rebuilt.A, rebuilt.emails
data = rebuilt.data  # the same rows: three companies, each with a department, employees and notes


def test_reverse_values_from_a_plain_model_read_only_the_tenant(data):
    with state.for_company(data.a):
        assert sorted(e for e in Company.objects.values_list("employee__email", flat=True) if e) == A
        texts = Note.objects.filter(employee__isnull=False).values_list("employee__email", flat=True)
        assert sorted(texts) == A
        assert sorted(Company.objects.filter(employee__email="c0@x").values_list("pk", flat=True)) == []


def test_subqueries_and_aggregates_over_tenant_rows_from_plain_models(data):
    with state.for_company(data.a):
        newest = Employee.objects.order_by("-email").values("email")[:1]
        assert set(Note.objects.annotate(e=Subquery(newest)).values_list("e", flat=True)) == {"a1@x"}
        per_company = Employee.objects.filter(company=OuterRef("pk")).values("company").annotate(n=Count("pk"))
        counts = dict(Company.objects.annotate(n=Subquery(per_company.values("n"))).values_list("pk", "n"))
        assert counts[data.a] == 2 and counts[data.c] is None
        assert Company.objects.aggregate(s=Sum("employee__salary"), m=Max("employee__email")) == {
            "s": 20,
            "m": "a1@x",
        }
        assert Company.objects.filter(pk=data.c).aggregate(n=Count("employee"))["n"] == 0
        # Count("employee") would count Note's own column; through the join only the tenant's rows count.
        assert Note.objects.aggregate(n=Count("employee__email"))["n"] == 2


def test_locking_union_in_bulk_iterator_alias_and_prefetch_to_attr(data):
    with state.for_company(data.a):
        with transaction.atomic():
            # Only "self": PostgreSQL cannot lock the nullable side of the outer join to the department;
            # MariaDB has no FOR UPDATE OF at all.
            of = ("self",) if connection.features.has_select_for_update_of else ()
            rows = Employee.objects.select_related("department").select_for_update(of=of)
            assert emails(rows) == A
        union = Employee.objects.values_list("email", flat=True).union(Note.objects.values_list("text", flat=True))
        assert sorted(union) == sorted([*A, "a0", "a1", "b0", "b1", "c0", "c1"])
        assert set(Employee.objects.in_bulk([data.c_emp.pk, data.b_emp.pk])) == set()
        with state.unscoped():
            own = set(Employee.objects.filter(company_id=data.a).values_list("pk", flat=True))
        assert set(Employee.objects.in_bulk()) == own
        assert emails(Employee.objects.iterator()) == A
        assert emails(Employee.objects.alias(n=Count("projects")).filter(n__gte=1)) == A
        depts = Department._base_manager.prefetch_related(Prefetch("employees", to_attr="staff"))
        assert [(d.name, emails(d.staff)) for d in depts] == [("a-dept", A)]
        notes = Note.objects.order_by("text").prefetch_related(Prefetch("employee", to_attr="who"))
        assert [n.text for n in notes if getattr(n, "who", None)] == ["a0", "a1"]


def test_filtered_relations_expressions_and_set_operations_through_plain_models(data):
    with state.for_company(data.a):
        paid = FilteredRelation("employee", condition=Q(employee__salary=10))
        assert sorted(e for e in Company.objects.annotate(e=paid).values_list("e__email", flat=True) if e) == A
        assert sorted(Note.objects.annotate(x=F("employee__email")).exclude(x=None).values_list("x", flat=True)) == A
        mine = Note.objects.values_list("employee__email", flat=True)
        assert sorted(mine.intersection(Employee.objects.values_list("email", flat=True))) == A


@pytest.mark.parametrize(
    "read",
    [
        lambda: list(Company.objects.values_list("employee__email", flat=True)),
        lambda: Company.objects.aggregate(s=Sum("employee__salary")),
        lambda: list(Note.objects.annotate(e=Subquery(Employee.objects.values("email")[:1]))),
        lambda: list(Employee.objects.values_list("email").union(Note.objects.values_list("text"))),
        lambda: Employee.objects.in_bulk(),
        lambda: list(Note.objects.annotate(x=F("employee__email")).values_list("x")),
        lambda: list(Company.objects.annotate(e=FilteredRelation("employee")).values_list("e__email")),
        lambda: list(Employee.objects.iterator()),
        lambda: list(Department._base_manager.prefetch_related(Prefetch("employees", to_attr="x"))),
        lambda: list(Note.objects.prefetch_related(Prefetch("employee", to_attr="who"))),
    ],
)
def test_with_nothing_bound_each_path_fails_closed(data, read):
    with pytest.raises(NoTenantBound):
        read()


@pytest.mark.django_db(transaction=True)
def test_async_reads_are_scoped_and_fail_closed(data):
    async def probe():
        with state.for_company(data.a):
            got = await Employee.objects.aget(pk=data.a_emp.pk)
            assert got.company_id == data.a
            with pytest.raises(Employee.DoesNotExist):
                await Employee.objects.aget(pk=data.c_emp.pk)
            assert await Employee.objects.acount() == 2
            assert sorted([e.email async for e in Employee.objects.all()]) == A
            assert await Company.objects.filter(employee__email="c0@x").acount() == 0
        with pytest.raises(NoTenantBound):
            await Employee.objects.acount()
        with pytest.raises(NoTenantBound):
            [e async for e in Employee.objects.all()]
        with pytest.raises(NoTenantBound):
            await Employee.objects.aget(pk=data.a_emp.pk)

    async def probe_and_close():
        try:
            await probe()
        finally:
            # The async ORM ran in a worker thread with its own connection: close it, or PostgreSQL
            # refuses to drop the test database while it is open.
            await sync_to_async(connections.close_all)()

    asyncio.run(probe_and_close())
    assert state.tenant_or_none() is None
