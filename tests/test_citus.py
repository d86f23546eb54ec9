"""Citus: the distributed schema, routing, co-located joins and writes, on a real cluster.

Run with DATABASE_URL on a Citus coordinator (``.ci/run`` does). Elsewhere the Citus tests skip
with a reason, unless COBEE_REQUIRE_CITUS=1, which turns a missing cluster into a failure. The
last tests run on every database: what the Citus work changed for all of them.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import uuid
from types import SimpleNamespace

import pytest
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor

from cobee_django import state
from cobee_django.db import citus
from cobee_django.db.policy import tenant_models
from cobee_django.exceptions import CitusError
from cobee_django.models import Company, Corporation
from testproject.api.models import Consumption, Employee


@pytest.fixture
def on_citus(db):
    if not citus.is_citus(connection):
        if os.environ.get("COBEE_REQUIRE_CITUS"):
            pytest.fail("COBEE_REQUIRE_CITUS is set but DATABASE_URL is not a Citus coordinator")
        pytest.skip("needs DATABASE_URL on a Citus coordinator (see docs/scaling-out.md)")


@pytest.fixture
def corp(db):
    """A corporation of four companies with an employee and a consumption each, and a lone company."""
    corporation = Corporation.objects.create(name="Group")
    companies = [Company.objects.create(name=f"C{i}", corporation=corporation) for i in range(4)]
    lone = Company.objects.create(name="Lone")
    with state.unscoped():
        for company in [*companies, lone]:
            employee = Employee.objects.create(
                company=company, email=f"e@{company.name}.test", legal_id=company.name, name="N", surname="S"
            )
            Consumption.objects.create(
                company=company,
                employee=employee,
                category="meal-benefit",
                amount_in_cents=100,
                payroll="2026-01",
                date=datetime.date(2026, 1, 5),
            )
    return corporation, companies, lone


def _distributed_models() -> list[type]:
    """The tenant models this suite distributes (tests.rlsapp's tables are distributed with its
    row-level security on Citus, which Citus's rules for policies on distributed tables hold back; the
    relation zoo of tests.zooapp stays in plain tables: it tests the ORM's join restriction, not Citus)."""
    return [m for m in tenant_models() if not m._meta.parents and m._meta.app_label not in {"rlsapp", "zoo"}]


def _rows(sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def _task_count(plan: str) -> int:
    counts = [int(line.split(":")[1]) for line in plan.splitlines() if "Task Count:" in line]
    assert counts, plan
    return sum(counts)


def _shards(table: str, companies: list[uuid.UUID]) -> set[int]:
    return {
        int(row[0])
        for company in companies
        for row in _rows("SELECT get_shard_id_for_distribution_column(%s, %s::uuid)", [table, str(company)])
    }


def test_every_tenant_table_is_distributed_by_company_in_one_colocation_group(on_citus):
    tables = sorted(m._meta.db_table for m in _distributed_models())
    rows = _rows(
        "SELECT logicalrelid::regclass::text, partmethod, column_to_column_name(logicalrelid, partkey), colocationid "
        "FROM pg_dist_partition WHERE logicalrelid::regclass::text = ANY (%s) ORDER BY 1",
        [tables],
    )
    assert [row[0] for row in rows] == tables
    assert {(row[1], row[2]) for row in rows} == {("h", "company_id")}
    assert len({row[3] for row in rows}) == 1, rows
    references = _rows(
        "SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE repmodel = 't' ORDER BY 1",
    )
    assert ("cobee_django_company",) in references
    assert ("cobee_django_corporation",) in references


def test_keys_include_the_company(on_citus):
    for model in _distributed_models():
        table = model._meta.db_table
        (columns,) = _rows(
            "SELECT ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) FROM pg_constraint c "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
            [table],
        )[0]
        assert columns == ["company_id", model._meta.pk.column], table
    # Between tenant tables: composite keys, which keep both rows in one company.
    (fk,) = _rows(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'api_consumption'::regclass "
        "AND confrelid = 'api_employee'::regclass",
    )
    assert fk[0] == "FOREIGN KEY (company_id, employee_id) REFERENCES api_employee(company_id, id)"


def test_one_company_query_goes_to_one_shard(on_citus, corp):
    _, companies, _ = corp
    with state.for_company(companies[0].pk):
        assert _task_count(Employee.objects.all().explain()) == 1
        assert _task_count(Consumption.objects.filter(employee__name="N").explain()) == 1
        assert Consumption.objects.filter(employee__name="N").count() == 1


def test_corporation_query_touches_only_its_companies_shards(on_citus, corp):
    corporation, companies, _ = corp
    mine = _shards("api_employee", [c.pk for c in companies])
    (total,) = _rows("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'api_employee'::regclass")[0]
    assert len(mine) < int(total)  # type: ignore[call-overload]
    with state.for_corporation(corporation.pk):
        assert _task_count(Employee.objects.all().explain()) == len(mine)
        assert Employee.objects.count() == 4


def test_corporation_join_is_colocated(on_citus, corp):
    """The join matches the company columns: one task per shard, no repartitioning, no error."""
    corporation, companies, _ = corp
    mine = _shards("api_consumption", [c.pk for c in companies])
    with state.for_corporation(corporation.pk):
        queryset = Consumption.objects.filter(employee__surname="S").select_related("employee")
        plan = queryset.explain()
        assert "repartition" not in plan.lower() and "MapMergeJob" not in plan, plan
        assert _task_count(plan) == len(mine)
        assert sorted(c.employee.legal_id for c in queryset) == ["C0", "C1", "C2", "C3"]


def test_corporation_saves_its_employees(on_citus, corp):
    corporation, companies, _ = corp
    with state.for_corporation(corporation.pk):
        for employee in Employee.objects.all():
            employee.name = "Renamed"
            employee.save()
        assert set(Employee.objects.values_list("name", flat=True)) == {"Renamed"}
        employee = Employee.objects.get(company=companies[1])
        Consumption.objects.filter(employee=employee).delete()  # else the write guards refuse the move first
        employee.company_id = companies[2].pk  # a move: Citus cannot do it, and says so
        with pytest.raises(CitusError, match="cannot move a row"):
            employee.save()


def test_a_citus_database_without_workers_fails_to_migrate(on_citus):
    """Citus keeps its nodes per database: one made on the coordinator alone has none."""
    name = f"{connection.settings_dict['NAME']}_noworkers"[:63]
    quoted = connection.ops.quote_name(name)
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {quoted}")
    lone = type(connections["default"])({**connection.settings_dict, "NAME": name}, alias="citus_noworkers")
    connections["citus_noworkers"] = lone  # the executor opens its transaction by alias
    try:
        assert citus.is_citus(lone) and citus._worker_count(lone) == 0
        with pytest.raises(CitusError, match="has no worker node"):
            MigrationExecutor(lone).migrate([("api", "0002_distribute_by_company")])
    finally:
        lone.close()
        del connections["citus_noworkers"]
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")


def test_the_distribution_check_names_the_model_and_the_constraint():
    from django.db import models
    from django.test.utils import isolate_apps

    from cobee_django.models import TenantModel

    with isolate_apps("tests.testapp"):

        class Voucher(TenantModel):
            code = models.CharField(max_length=10, unique=True)
            serial = models.IntegerField()
            label = models.CharField(max_length=10)

            class Meta:
                app_label = "testapp"
                constraints = [
                    models.UniqueConstraint(fields=["serial"], name="voucher_serial"),
                    models.UniqueConstraint(fields=["company", "label"], name="voucher_label"),
                ]

        problems = citus._distribution_problems([Voucher])
    assert [(p.id, p.msg) for p in problems] == [
        (
            "cobee_django.E040",
            "testapp.Voucher cannot be distributed by company: its field 'code' is unique across companies.",
        ),
        (
            "cobee_django.E040",
            "testapp.Voucher cannot be distributed by company: the unique constraint 'voucher_serial' does not "
            "include the company.",
        ),
    ]
    assert all("company" in p.hint for p in problems)


def test_operations_do_nothing_elsewhere_and_say_so_once(db, caplog):
    if citus.is_citus(connection):
        pytest.skip("this database is Citus: the operations run (the tests above)")
    from django.db.migrations.loader import MigrationLoader

    state_ = MigrationLoader(connection).project_state(("api", "0002_distribute_by_company"))
    citus._told.clear()
    # Nothing but the connection is used when there is nothing to do (SQLite refuses a real schema
    # editor inside the test's transaction).
    editor = SimpleNamespace(connection=connection)
    with caplog.at_level(logging.INFO, logger="cobee_django.citus"):
        for operation in [citus.DistributeTenantModel("Employee"), citus.CreateReferenceTable("cobee_django.Company")]:
            operation.database_forwards("api", editor, state_, state_)
            operation.database_backwards("api", editor, state_, state_)
    assert [r.getMessage() for r in caplog.records] == [
        f"Citus operations do nothing on {connection.vendor} database 'default': it has no citus extension. "
        "Tables stay local."
    ]


def test_save_pins_its_update_to_the_rows_company(corp):
    """On every database: save() updates by (id, company), without setting the company again."""
    corporation, companies, _ = corp
    from django.test.utils import CaptureQueriesContext

    with state.for_corporation(corporation.pk):
        employee = Employee.objects.get(company=companies[0])
        employee.name = "Pinned"
        with CaptureQueriesContext(connection) as queries:
            employee.save()
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1
    set_clause, where = updates[0].split(" WHERE ", 1)
    assert "company_id" not in set_clause
    assert "company_id" in where
    with state.unscoped():
        assert Employee.objects.get(pk=employee.pk).name == "Pinned"


def test_joins_match_their_company_columns_on_citus_only(corp):
    """Citus needs the equality to co-locate a join; PostgreSQL's planner would misjudge it, so
    elsewhere the SQL is what it was (the scoping's tenant conditions are the same either way)."""
    corporation, _, _ = corp
    with state.for_corporation(corporation.pk):
        queryset = Consumption.objects.filter(employee__surname="S")
        sql, _ = queryset.query.get_compiler(using=queryset.db).as_sql()
    quote = connection.ops.quote_name
    employee, consumption = (
        re.escape(f"{quote(table)}.{quote('company_id')}") for table in ("api_employee", "api_consumption")
    )
    equality = re.compile(rf"{employee} = \(?{consumption}")
    assert bool(equality.search(sql)) is citus.is_citus(connection), sql


def test_a_move_saved_with_update_fields_moves_the_row_or_says_why(corp):
    """Only the company is written: the pinned UPDATE has nothing to set and must not pass for it."""
    corporation, companies, _ = corp
    with state.for_corporation(corporation.pk):
        employee = Employee.objects.get(company=companies[0])
        # Its consumptions would stay in the old company: the write guards refuse that move first.
        Consumption.objects.filter(employee=employee).delete()
        employee.company_id = companies[1].pk
        if citus.is_citus(connection):
            with pytest.raises(CitusError, match="cannot move a row"):
                employee.save(update_fields=["company"])
            return
        employee.save(update_fields=["company"])
    with state.unscoped():
        assert Employee.objects.get(pk=employee.pk).company_id == companies[1].pk
