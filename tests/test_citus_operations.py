"""Citus shard operations on a real cluster: isolating a company, moving and rebalancing shards keep every row.

Runs when ``DATABASE_URL`` points at a Citus coordinator (``.ci/run`` does, on a database of its own:
these tests split and move the test database's shards). Skipped with a reason elsewhere, unless
``COBEE_REQUIRE_CITUS=1``, which turns that into a failure.

The threat: Citus copies a shard's rows as the calling role. The tables' owner is held by forced
row-level security (the test project's migration forces it), so run as the owner,
``isolate_tenant_to_new_shard`` and ``citus_move_shard_placement`` copy nothing and drop the old
shard. The commands refuse that role, lift ``FORCE`` for exactly the operation when told to, count
every co-located table's rows before and after, and roll back on any difference.
"""

from __future__ import annotations

import datetime
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from cobee_django import state
from cobee_django.db import citus, shards
from cobee_django.exceptions import ShardOperationError
from cobee_django.models import Company
from testproject.api.models import BenefitModel, Consumption, Employee
from tests.test_rls import connected_as

pytestmark = [pytest.mark.citus, pytest.mark.django_db(transaction=True)]

#: Companies and the rows each gets in the test project's co-located tables.
COMPANIES = 6
EMPLOYEES = 7


def _rows(sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall()) if cursor.description else []


@pytest.fixture
def cluster(transactional_db) -> None:
    reason = None
    if connection.vendor != "postgresql" or not citus.is_citus(connection):
        reason = "needs DATABASE_URL on a Citus coordinator (see docs/scaling-out.md)"
    elif not citus._worker_count(connection):
        reason = "the Citus test database has no workers"
    if reason:
        if os.environ.get("COBEE_REQUIRE_CITUS"):
            pytest.fail(f"COBEE_REQUIRE_CITUS is set but {reason}")
        pytest.skip(reason)


@pytest.fixture
def companies(cluster) -> list[uuid.UUID]:
    """Companies with employees and consumptions in the distributed tables."""
    ids = []
    for i in range(COMPANIES):
        company = Company.objects.create(name=f"Shard {i}")
        with state.for_company(company.id):
            model = BenefitModel.objects.create(company=company, name="M")
            for j in range(EMPLOYEES):
                employee = Employee.objects.create(
                    company=company, email=f"e{j}@c{i}.test", legal_id=f"{i}-{j}", name="N", surname="S", model=model
                )
                Consumption.objects.create(
                    company=company,
                    employee=employee,
                    category="meal-benefit",
                    amount_in_cents=100,
                    payroll="2026-01",
                    date=datetime.date(2026, 1, 5),
                )
        ids.append(company.id)
    return ids


def _tables() -> list[str]:
    return shards.colocated_tables(connection, shards.anchor_table(connection))


def _counts(company: uuid.UUID | None = None) -> shards.Counts:
    return shards.count_rows(connection, _tables(), company=str(company) if company else None)


@pytest.fixture
def owner(cluster) -> Iterator[str]:
    """A plain role that owns every Citus table (tenant and reference), as the docs' migrating role does."""
    name = f"cobee_shard_owner_{secrets.token_hex(3)}"
    tables = [str(r[0]) for r in _rows("SELECT logicalrelid::regclass::text FROM pg_dist_partition ORDER BY 1")]
    owner_of = "SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass"
    previous = {t: _rows(owner_of, [t])[0][0] for t in tables}
    _rows(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS')
    # Creating shards on the workers needs the schema there; the registry's keys need REFERENCES.
    _rows(f"SELECT run_command_on_all_nodes('GRANT USAGE, CREATE ON SCHEMA public TO \"{name}\"')")
    _rows("SET citus.multi_shard_modify_mode TO 'sequential'")  # one GRANT over several Citus tables
    _rows(f'GRANT REFERENCES ON ALL TABLES IN SCHEMA public TO "{name}"')
    for table in tables:
        _rows(f'ALTER TABLE {table} OWNER TO "{name}"')
    yield name
    for table, role in previous.items():
        _rows(f"ALTER TABLE {table} OWNER TO {role}")
    _rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [name])
    # Shards a rolled-back split left for Citus's cleanup are still the role's: drop them first.
    _rows("CALL citus_cleanup_orphaned_resources()")
    _rows(f"SELECT run_command_on_all_nodes('REVOKE ALL ON SCHEMA public FROM \"{name}\"')")
    _rows(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{name}"')
    _rows("RESET citus.multi_shard_modify_mode")
    _rows(f'DROP ROLE "{name}"')


def _shard_of(company: uuid.UUID) -> tuple[int, int, int]:
    """The company's shard in the anchor table and that shard's hash range."""
    anchor = shards.anchor_table(connection)
    shard = int(_rows("SELECT get_shard_id_for_distribution_column(%s, %s::uuid)", [anchor, str(company)])[0][0])
    low, high = _rows("SELECT shardminvalue::int, shardmaxvalue::int FROM pg_dist_shard WHERE shardid = %s", [shard])[0]
    return shard, int(low), int(high)


def _forced_everywhere(tables: list[str]) -> bool:
    """FORCE ROW LEVEL SECURITY on the tables that had it, on the coordinator and on every shard."""
    for table in tables:
        results = _rows(
            "SELECT result FROM run_command_on_shards(%s, $$SELECT relforcerowsecurity FROM pg_class "
            "WHERE oid = '%%s'::regclass$$)",
            [table],
        )
        if {r[0] for r in results} != {"t"}:
            return False
    return True


# --- the threat is real ------------------------------------------------------------------------


def test_raw_isolation_as_the_forced_owner_loses_the_companys_rows(companies, owner):
    """What docs/scaling-out.md's SQL did when run as the owner: checked inside a transaction rolled back."""
    company = companies[0]
    before = _counts(company)
    assert set(before.company.values()) >= {EMPLOYEES}
    with connected_as(owner) as conn, conn.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(
            "SELECT isolate_tenant_to_new_shard(%s, %s::uuid, 'CASCADE', shard_transfer_mode => 'block_writes')",
            [shards.anchor_table(conn), str(company)],
        )
        cursor.execute("RESET ROLE")
        cursor.execute("SET LOCAL citus.propagate_set_commands TO 'local'")
        cursor.execute("SET LOCAL cobee.rls_bypass TO 'on'")  # the bypass policy: count every row
        cursor.execute("SELECT count(*) FROM api_employee WHERE company_id = %s", [str(company)])
        (lost,) = cursor.fetchone()
        cursor.execute("ROLLBACK")
    assert lost == 0  # every one of the company's employees gone
    assert _counts(company) == before


# --- refusals --------------------------------------------------------------------------------------


def test_the_forced_owner_is_refused_and_force_survives_a_failed_lift(companies, owner):
    company = companies[1]
    before, shard = _counts(company), _shard_of(company)
    with connected_as(owner), pytest.raises(CommandError, match="would be lost"):
        call_command("citus_isolate_company", str(company))
    source = shards.shard_node(connection, shard[0])
    target = next(n for n in _rows("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0") if n != source)
    with connected_as(owner), pytest.raises(CommandError, match="--lift-force"):
        call_command("citus_move_shard", str(shard[0]), f"{target[0]}:{target[1]}")
    assert _counts(company) == before
    assert _shard_of(company) == shard
    # With --lift-force, an operation that fails half-way gives FORCE back all the same.
    forced = shards.forced(connection, _tables())
    # The coordinator is a node, but one that holds no shards: Citus refuses the move half-way.
    host, port = _rows("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid = 0")[0]
    with connected_as(owner), pytest.raises(CommandError, match="Citus refused the operation"):
        call_command("citus_move_shard", str(shard[0]), f"{host}:{port}", "--lift-force")
    assert shards.forced(connection, _tables()) == forced
    assert _forced_everywhere(forced)
    assert _counts(company) == before


def test_a_role_that_does_not_own_the_tables_is_refused_even_with_lift_force(companies):
    name = f"cobee_shard_other_{secrets.token_hex(3)}"
    _rows(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS')
    _rows("SET citus.multi_shard_modify_mode TO 'sequential'")
    try:
        _rows(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{name}"')
        with connected_as(name), pytest.raises(CommandError, match="superuser or a role with BYPASSRLS") as caught:
            call_command("citus_isolate_company", str(companies[0]), "--lift-force")
        assert "--lift-force" not in str(caught.value)
    finally:
        _rows(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{name}"')
        _rows("RESET citus.multi_shard_modify_mode")
        _rows(f'DROP ROLE "{name}"')


def test_bad_input_is_a_command_error(cluster):
    with pytest.raises(CommandError, match="not a company id"):
        call_command("citus_isolate_company", "not-a-uuid")
    with pytest.raises(CommandError, match="not a node"):
        call_command("citus_move_shard", "1", "nowhere")
    with pytest.raises(CommandError, match="no shard"):
        call_command("citus_move_shard", "1", "127.0.0.1:5432")


# --- the operations keep every row ----------------------------------------------------------------


def test_isolating_a_company_keeps_every_row(companies, capsys):
    company = companies[2]
    before = _counts(company)
    call_command("citus_isolate_company", str(company))
    _, low, high = _shard_of(company)
    assert low == high  # a shard of its own
    assert _counts(company) == before
    out = capsys.readouterr().out
    assert "every row kept" in out
    assert f"api_employee={before.total['api_employee']} ({EMPLOYEES} of the company)" in out


def test_the_owner_with_lift_force_keeps_every_row_and_gets_force_back(companies, owner, caplog):
    company = companies[3]
    tables = _tables()
    forced = shards.forced(connection, tables)
    assert "api_employee" in forced
    before = _counts(company)
    with connected_as(owner):
        call_command("citus_isolate_company", str(company), "--lift-force")
    assert _shard_of(company)[1] == _shard_of(company)[2]
    assert _counts(company) == before
    assert shards.forced(connection, tables) == forced
    assert _forced_everywhere(forced)
    assert "FORCE ROW LEVEL SECURITY restored" in caplog.text


def test_a_count_that_changes_rolls_the_operation_back(companies):
    """The guard itself: an operation that loses a row is undone, and the error names the table."""
    tables = _tables()
    before = _counts()

    def loses_a_row() -> None:
        with connection.connection.cursor() as cursor:
            cursor.execute("SELECT company_id, id FROM api_consumption LIMIT 1")
            cursor.execute("DELETE FROM api_consumption WHERE company_id = %s AND id = %s", cursor.fetchone())

    with pytest.raises(ShardOperationError, match=r"api_consumption: \d+ rows before"):
        shards._counted(connection, tables, loses_a_row)
    assert _counts() == before


def test_moving_a_shard_keeps_every_row(companies):
    shard = _shard_of(companies[4])[0]
    source = shards.shard_node(connection, shard)
    target = next(n for n in _rows("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0") if n != source)
    before = _counts()
    call_command("citus_move_shard", str(shard), f"{target[0]}:{target[1]}")
    assert shards.shard_node(connection, shard) == target
    assert _counts() == before


def test_rebalancing_keeps_every_row(companies, capsys):
    # Put more shards of the group on one worker, then let the rebalancer spread them again.
    workers = _rows("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 ORDER BY nodeid")
    anchor = shards.anchor_table(connection)
    of_anchor = _rows("SELECT shardid FROM pg_dist_shard WHERE logicalrelid = %s::regclass ORDER BY 1", [anchor])
    while not shards.rebalance_plan(connection):
        shard = next(int(s) for (s,) in of_anchor if shards.shard_node(connection, int(s)) != workers[0])
        shards.move_shard(connection, shard, workers[0])
    before = _counts()
    call_command("citus_rebalance", "--dry-run")
    assert "Would move shard" in capsys.readouterr().out
    call_command("citus_rebalance")
    assert "every row kept" in capsys.readouterr().out
    assert shards.rebalance_plan(connection) == []
    assert _counts() == before


def test_isolating_under_concurrent_writes_keeps_every_row(companies):
    """Writers keep inserting during the isolation: they wait for it, and every row is there afterwards."""
    company = companies[5]
    before = _counts(company)
    inserted: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                with state.for_company(company):
                    Employee.objects.create(
                        company_id=company,
                        email=f"w{len(inserted)}@x.test",
                        legal_id=f"w{len(inserted)}",
                        name="W",
                        surname="W",
                    )
                inserted.append(1)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.5)
    during = len(inserted)
    call_command("citus_isolate_company", str(company))
    time.sleep(0.3)
    stop.set()
    thread.join(30)
    assert not errors
    assert during > 0 and len(inserted) > during
    after = _counts(company)
    assert after.company["api_employee"] == before.company["api_employee"] + len(inserted)
    assert after.total["api_employee"] == before.total["api_employee"] + len(inserted)
    assert after.total["api_consumption"] == before.total["api_consumption"]


# --- the deployment check ------------------------------------------------------------------------


def _check_ids() -> list[str]:
    from django.core.checks import run_checks

    return [m.id for m in run_checks(include_deployment_checks=True, databases=["default"]) if m.id]


def test_the_deploy_checks_report_shard_operations_that_would_lose_rows(cluster, request):
    # A superuser owns the tables: nothing to report.
    assert not {"cobee_django.W042", "cobee_django.E042"} & set(_check_ids())
    owner = request.getfixturevalue("owner")  # now a plain role owns them, with FORCE on
    assert "cobee_django.W042" in _check_ids()
    # A rebalance started with citus_rebalance_start() as that owner: its queued moves would lose rows.
    job = _rows(
        "INSERT INTO pg_dist_background_job (job_type, description) VALUES ('rebalance', 'test') RETURNING job_id"
    )[0][0]
    try:
        _rows(
            "INSERT INTO pg_dist_background_task (job_id, owner, status, command) VALUES (%s, %s::regrole, 'blocked', "
            "'SELECT 1')",
            [job, owner],
        )
        assert "cobee_django.E042" in _check_ids()
    finally:
        _rows("DELETE FROM pg_dist_background_task WHERE job_id = %s", [job])
        _rows("DELETE FROM pg_dist_background_job WHERE job_id = %s", [job])
    assert "cobee_django.E042" not in _check_ids()
