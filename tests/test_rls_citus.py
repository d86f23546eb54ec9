"""Row-level security on a real Citus cluster: the policies on every shard, the tenant on every worker.

Runs when ``DATABASE_URL`` points at a Citus coordinator whose test database has workers (skipped
with a reason otherwise; ``COBEE_REQUIRE_CITUS=1`` makes that a failure). The test app's protected
tables are distributed by company, co-located, and the tests connect as a role that is not their
owner, exactly as the plain PostgreSQL tests of ``test_rls`` do.

The threat: on Citus the policies run on the workers, against shards. A tenant value that stays on
the coordinator (``set_config()``) leaves the shards seeing nothing, and a shard without the
policies would show everything; both are checked here, not assumed.
"""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.db import DatabaseError, connection, connections, transaction
from django.db.migrations.state import ProjectState

from cobee_django.db import policy, rls
from cobee_django.db.citus import is_citus
from cobee_django.db.operations import AddSameCompanyConstraint, EnableRowLevelSecurity
from cobee_django.state import for_company, for_corporation, unscoped
from tests import test_rls
from tests.rlsapp.models import Team
from tests.test_rls import INSERT_TEAM, A, B, C, as_caller, connected_as, raw_names

# The plain PostgreSQL tests' fixtures: the same role, data and requests, on the cluster.
runtime_role = test_rls.runtime_role
data = test_rls.data
pg_db = test_rls.pg_db
rls_on = test_rls.rls_on
as_runtime = test_rls.as_runtime
issuer = test_rls.issuer
api = test_rls.api

#: The test app's tables, distributed by company in one co-location group.
DISTRIBUTED = ("rlsapp_team", "rlsapp_member", "rlsapp_note")


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _why_not_citus() -> str | None:
    if connection.vendor != "postgresql":
        return "needs DATABASE_URL=postgres://... on a Citus coordinator"
    if not is_citus(connection):
        return "the test database has no Citus extension (DATABASE_URL is not a Citus coordinator)"
    if not _fetch("SELECT 1 FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0"):
        return "the Citus test database has no workers (it must be created on every node)"
    return None


def _distribute() -> None:
    """Distribute the test app's tables by company (what a project's migrations do on Citus).

    Citus wants every unique key to hold the distribution column: the primary keys become
    ``(company_id, id)`` and the foreign keys between tenant tables keep only their composite
    same-company form. The foreign keys to the company registry are left out (the registry stays a
    local table here; making it a reference table is the distribution operations' business, not
    this wall's). The policies were created by the app's migrations before this, which Citus
    copies to the shards.
    """
    if _fetch("SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'rlsapp_team'::regclass AND partmethod = 'h'"):
        return
    foreign_keys = _fetch(
        "SELECT conrelid::regclass::text, conname, array_length(conkey, 1) FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid::regclass::text = ANY (%s)",
        [list(DISTRIBUTED)],
    )
    statements = [
        # Foreign keys between the tables go while they are distributed; the same-company ones return.
        *(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for table, name, _ in foreign_keys),
        *(f'ALTER TABLE {table} DROP CONSTRAINT "{table}_pkey" CASCADE' for table in DISTRIBUTED),
        *(f"ALTER TABLE {table} ADD PRIMARY KEY (company_id, id)" for table in DISTRIBUTED),
        "SELECT create_distributed_table('rlsapp_team', 'company_id')",
        "SELECT create_distributed_table('rlsapp_member', 'company_id', colocate_with => 'rlsapp_team')",
        "SELECT create_distributed_table('rlsapp_note', 'company_id', colocate_with => 'rlsapp_team')",
    ]
    state = ProjectState.from_apps(apps)
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
        with connection.schema_editor(atomic=False) as editor:
            AddSameCompanyConstraint("Member", "team").database_forwards("rlsapp", editor, state, state)


@pytest.fixture(scope="session")
def citus(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        reason = _why_not_citus()
        if reason:
            if os.environ.get("COBEE_REQUIRE_CITUS"):
                pytest.fail(f"COBEE_REQUIRE_CITUS is set but {reason}")
            pytest.skip(reason)
        _distribute()


@pytest.fixture
def on_citus(citus, as_runtime):
    """The runtime role's connection to the coordinator, three companies' teams on the shards."""
    return as_runtime


def shard_states(table: str) -> set[str]:
    """What every shard of ``table`` says about its row-level security (run on the workers)."""
    rows = _fetch(
        "SELECT result FROM run_command_on_shards(%s, $$SELECT (relrowsecurity AND relforcerowsecurity)::text "
        "|| ':' || coalesce((SELECT string_agg(polname, ',' ORDER BY polname) FROM pg_policy "
        "WHERE polrelid = c.oid), '') "
        "FROM pg_class c WHERE c.oid = '%%s'::regclass$$)",
        [table],
    )
    return {row[0] for row in rows}


# --- the schema ---------------------------------------------------------------------------------


def test_the_tables_are_distributed_and_every_shard_is_protected(citus, pg_db):
    kinds = dict(
        _fetch(
            "SELECT logicalrelid::regclass::text, partmethod FROM pg_dist_partition "
            "WHERE logicalrelid::regclass::text = ANY (%s)",
            [list(DISTRIBUTED)],
        )
    )
    assert kinds == dict.fromkeys(DISTRIBUTED, "h")
    groups = "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid::text = ANY (%s)"
    assert _fetch(groups, [list(DISTRIBUTED)]) == [(1,)]
    for table in ("rlsapp_team", "rlsapp_member"):
        assert shard_states(table) == {"true:cobee_bypass,cobee_tenant"}
    assert shard_states("rlsapp_note") == {"false:"}  # left unprotected on purpose (the checks report it)
    # The test project's tables: distributed by its migrations first, protected after (api 0100).
    if _fetch("SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'api_employee'::regclass AND partmethod = 'h'"):
        for table in ("api_employee", "api_consumption"):
            assert shard_states(table) == {"true:cobee_bypass,cobee_tenant"}


def test_enabling_after_distribution_reaches_every_shard(citus, transactional_db):
    """The operation works on an already distributed table too: the migrations' order does not matter."""
    operation = EnableRowLevelSecurity("Team")
    state = ProjectState.from_apps(apps)
    try:
        with connection.schema_editor() as editor:
            operation.database_backwards("rlsapp", editor, state, state)
        assert shard_states("rlsapp_team") == {"false:"}
    finally:
        with connection.schema_editor() as editor:
            operation.database_forwards("rlsapp", editor, state, state)
    assert shard_states("rlsapp_team") == {"true:cobee_bypass,cobee_tenant"}


def test_policies_made_on_plain_postgresql_are_rewritten_for_citus(citus, transactional_db):
    """A table protected before the extension existed: its subquery policies are rewritten."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS rls_citus_probe")
        cursor.execute("CREATE TABLE rls_citus_probe (id bigint, company_id uuid, PRIMARY KEY (company_id, id))")
        for sql in policy.enable_sql("rls_citus_probe", "company_id", quote, citus=False):
            cursor.execute(sql)
        with pytest.raises(DatabaseError, match="ubquer"), transaction.atomic():
            cursor.execute("SELECT create_distributed_table('rls_citus_probe', 'company_id')")
        for sql in policy.citus_policy_sql(connection, "rls_citus_probe", "company_id"):
            cursor.execute(sql)
        cursor.execute("SELECT create_distributed_table('rls_citus_probe', 'company_id', colocate_with => 'none')")
    try:
        assert shard_states("rls_citus_probe") == {"true:cobee_bypass,cobee_tenant"}
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE rls_citus_probe")
    assert policy.citus_policy_sql(connection, "rlsapp_note", "company_id") == []  # no policies: nothing to do


# --- reads --------------------------------------------------------------------------------------


def test_one_company_sees_its_rows_from_its_shard(on_citus):
    with for_company(A):
        assert raw_names() == ["a1", "a2"]
        assert raw_names("SELECT name FROM rlsapp_team WHERE company_id = %s", [B]) == []
        assert raw_names("SELECT name FROM rlsapp_team WHERE company_id = %s ORDER BY name", [A]) == ["a1", "a2"]
    with for_company(C):
        assert raw_names() == ["c1", "c2", "c3"]


def test_a_corporation_sees_each_of_its_companies_across_shards(on_citus):
    with for_corporation(uuid.UUID("00000000-0000-0000-0000-0000000000c0")):
        assert raw_names() == ["a1", "a2", "b1"]
        # A co-located join runs on the workers too, under the policies of both tables.
        joined = "SELECT t.name FROM rlsapp_team t JOIN rlsapp_team u ON u.company_id = t.company_id AND u.id = t.id"
        assert sorted(raw_names(joined)) == ["a1", "a2", "b1"]


def test_nothing_bound_means_no_rows(on_citus):
    assert raw_names() == []
    with transaction.atomic():
        assert raw_names() == []
    with for_company(A):
        assert raw_names() == ["a1", "a2"]
    assert raw_names() == []  # the same connection, after a bound transaction


def test_set_config_alone_would_leave_the_shards_blind(on_citus, monkeypatch):
    """Why the values are sent with SET LOCAL on Citus: the plain PostgreSQL way sees nothing there."""
    on_citus.ensure_connection()  # a new connection asks again whether it is on Citus
    monkeypatch.setitem(rls._citus, on_citus, False)
    with for_company(A):
        assert raw_names() == []
    monkeypatch.setitem(rls._citus, on_citus, True)
    with for_company(A):
        assert raw_names() == ["a1", "a2"]


def test_the_orm_around_the_manager_is_held(on_citus):
    with for_company(B):
        assert sorted(t.name for t in Team._base_manager.all()) == ["b1"]
        assert Team._base_manager.count() == 1


def test_changing_tenant_inside_one_transaction_reaches_open_worker_connections(on_citus):
    with transaction.atomic():
        with for_company(A):
            assert raw_names() == ["a1", "a2"]
        with for_company(C):
            assert raw_names() == ["c1", "c2", "c3"]
        with for_company(B):
            try:
                with transaction.atomic():
                    with for_company(A):
                        assert raw_names() == ["a1", "a2"]
                    raise RuntimeError("roll the savepoint back")
            except RuntimeError:
                pass
            assert raw_names() == ["b1"]
        assert raw_names() == []


def test_threads_bound_to_different_companies(on_citus, runtime_role):
    barrier = threading.Barrier(3, timeout=30)
    seen = {}

    def worker(company):
        try:
            with connected_as(runtime_role), for_company(company):
                first = raw_names()
                barrier.wait()
                with transaction.atomic():
                    seen[company] = (first, raw_names())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(company,)) for company in (A, B, C)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {
        A: (["a1", "a2"], ["a1", "a2"]),
        B: (["b1"], ["b1"]),
        C: (["c1", "c2", "c3"], ["c1", "c2", "c3"]),
    }


# --- writes and the bypass ----------------------------------------------------------------------


def test_writes_into_another_company_fail_on_the_worker(on_citus):
    with for_company(A):
        with pytest.raises(DatabaseError, match="row-level security"):
            raw_names(INSERT_TEAM, [uuid.uuid4(), B])
        assert raw_names(INSERT_TEAM, [uuid.uuid4(), A]) == ["x"]
        assert raw_names("UPDATE rlsapp_team SET name = 'stolen' WHERE company_id = %s RETURNING name", [B]) == []
    with pytest.raises(DatabaseError, match="row-level security"):
        raw_names(INSERT_TEAM, [uuid.uuid4(), C])  # nothing bound


def test_unscoped_reaches_every_shard(on_citus):
    with unscoped():
        assert len(raw_names()) == 6


# --- a whole request, and the checks --------------------------------------------------------------


def test_a_request_sees_only_its_callers_rows(citus, api, issuer):
    assert api.get("/raw-teams", **as_caller(issuer, A)).json()["names"] == ["a1", "a2"]
    corporation = uuid.UUID("00000000-0000-0000-0000-0000000000c0")
    assert api.get("/raw-teams", **as_caller(issuer, B, corporation)).json()["names"] == ["a1", "a2", "b1"]
    assert api.get("/raw-teams").json()["names"] == []


def test_the_runtime_role_passes_the_deploy_checks(on_citus):
    messages = run_checks(include_deployment_checks=True, databases=["default"])
    ids = {m.id for m in messages if m.id and m.id.startswith("cobee_django.")}
    assert "cobee_django.E021" not in ids and "cobee_django.E022" not in ids
    assert "cobee_django.E025" not in ids  # every shard of every protected table, on the workers
    unprotected = " ".join(m.msg for m in messages if m.id == "cobee_django.E023")
    assert "rlsapp.Note" in unprotected
    assert "rlsapp.Team" not in unprotected and "rlsapp.Member" not in unprotected


def test_a_shard_changed_on_the_workers_is_reported(citus, transactional_db):
    """The shards' own policies are what holds: one left unprotected on a worker is an error."""
    assert not [p for p in policy.shard_problems(connection) if p.id == "cobee_django.E025"]
    with connection.cursor() as cursor:
        # What someone working on a worker by hand could do (the coordinator's table stays protected).
        cursor.execute("SELECT run_command_on_shards('rlsapp_member', $$ALTER TABLE %s NO FORCE ROW LEVEL SECURITY$$)")
    try:
        (problem,) = [p for p in policy.shard_problems(connection) if p.id == "cobee_django.E025"]
        assert "rlsapp.Member" in problem.msg
        assert not [p for p in policy.table_problems(connection) if "rlsapp.Member" in p.msg]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT run_command_on_shards('rlsapp_member', $$ALTER TABLE %s FORCE ROW LEVEL SECURITY$$)")
    assert not [p for p in policy.shard_problems(connection) if p.id == "cobee_django.E025"]
