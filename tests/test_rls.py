"""The second wall: PostgreSQL row-level security, seen from a role it actually holds.

The test database is created by a superuser, which row-level security never restricts. So the
tests create a plain role at run time (no SUPERUSER, no BYPASSRLS, owning nothing, holding only
SELECT/INSERT/UPDATE/DELETE) and swap the ``default`` connection to it, exactly as an application
serving requests with a dedicated runtime role would be connected.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import uuid
from contextlib import contextmanager, nullcontext

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.migrations.state import ProjectState
from django.db.models import QuerySet
from django.test import Client

from cobee_django.db import policy
from cobee_django.db.citus import is_citus
from cobee_django.db.operations import AddSameCompanyConstraint, EnableRowLevelSecurity
from cobee_django.exceptions import RowLevelSecurityError
from cobee_django.models import Company, Corporation
from cobee_django.state import for_company, for_corporation, unscoped
from cobee_django.testing import TokenIssuer, install_key_set, uninstall_key_set
from tests.conftest import on_postgres
from tests.rlsapp.models import Team

CORP = uuid.UUID("00000000-0000-0000-0000-0000000000c0")
A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
B = uuid.UUID("00000000-0000-0000-0000-00000000000b")
C = uuid.UUID("00000000-0000-0000-0000-00000000000c")
INSERT_TEAM = "INSERT INTO rlsapp_team (id, name, company_id) VALUES (%s, 'x', %s) RETURNING name"
TEAMS = {A: ["a1", "a2"], B: ["b1"], C: ["c1", "c2", "c3"]}


def _create_role(cursor, *attributes: str) -> str:
    name = f"cobee_rls_test_{secrets.token_hex(4)}"
    cursor.execute(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE {" ".join(attributes)}')
    try:
        cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{name}"')
        citus = is_citus(connection)
        if citus:  # one GRANT over distributed and reference tables: Citus wants it one shard at a time
            cursor.execute("SET citus.multi_shard_modify_mode TO 'sequential'")
        cursor.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{name}"')
        cursor.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{name}"')
        if citus:
            cursor.execute("RESET citus.multi_shard_modify_mode")
    except Exception:
        _drop_role(cursor, name)  # roles outlive the test database: leave none behind
        raise
    return name


def _drop_role(cursor, name: str) -> None:
    cursor.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
        [name],
    )
    cursor.execute(f'DROP OWNED BY "{name}"')
    cursor.execute(f'DROP ROLE "{name}"')


@pytest.fixture(scope="session")
def runtime_role(django_db_setup, django_db_blocker):
    """A role row-level security holds: what an application should serve requests as."""
    with django_db_blocker.unblock():
        if not on_postgres():
            yield None
            return
        with connection.cursor() as cursor:
            name = _create_role(cursor, "NOBYPASSRLS")
        yield name
        with connection.cursor() as cursor:
            _drop_role(cursor, name)


@contextmanager
def connected_as(role: str):
    """Make ``connections["default"]`` a connection as ``role``, reused across requests (CONN_MAX_AGE)."""
    original = connections["default"]
    runtime = original.__class__({**original.settings_dict, "USER": role, "PASSWORD": "", "CONN_MAX_AGE": 600})
    connections["default"] = runtime
    try:
        yield runtime
    finally:
        runtime.close()
        connections["default"] = original


@pytest.fixture
def data(require_postgres, transactional_db):
    """Three companies (A and B in one corporation) and their teams, written by the owner."""
    corporation = Corporation.objects.create(id=CORP, name="corp")
    for company_id in TEAMS:
        Company.objects.create(
            id=company_id, name=str(company_id)[-1], corporation=corporation if company_id != C else None
        )
    with unscoped():
        for company_id, names in TEAMS.items():
            for name in names:
                Team.objects.create(company_id=company_id, name=name)


@pytest.fixture
def pg_db(require_postgres, db):
    """PostgreSQL, inside the test's transaction (rolled back): for catalog reads and DDL."""


@pytest.fixture
def rls_on(settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ROW_LEVEL_SECURITY": True}


@pytest.fixture
def as_runtime(data, rls_on, runtime_role):
    with connected_as(runtime_role) as runtime:
        yield runtime


def raw_names(sql: str = "SELECT name FROM rlsapp_team ORDER BY name", params=()) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def setting_now(conn) -> str | None:
    """``cobee.company_ids`` as the server holds it outside any statement of ours (raw driver cursor)."""
    with conn.connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('cobee.company_ids', true), current_setting('cobee.rls_bypass', true)")
        return cursor.fetchone()


# --- reads --------------------------------------------------------------------------------------


def test_raw_select_sees_only_the_bound_company(as_runtime):
    with for_company(A):
        assert raw_names() == ["a1", "a2"]
        assert raw_names("SELECT name FROM rlsapp_team WHERE company_id = %s", [B]) == []
    with for_company(C):
        assert raw_names() == ["c1", "c2", "c3"]


def test_corporation_sees_each_of_its_companies(as_runtime):
    with for_corporation(CORP):
        assert raw_names() == ["a1", "a2", "b1"]


def test_nothing_bound_means_no_rows(as_runtime):
    assert raw_names() == []
    with transaction.atomic():
        assert raw_names() == []


def test_orm_paths_around_the_manager_are_held_too(as_runtime):
    with for_company(B):
        # The scoped manager is the first wall; these go around it and meet the second.
        assert sorted(t.name for t in QuerySet(model=Team).all()) == ["b1"]
        assert [t.name for t in QuerySet(model=Team).raw("SELECT * FROM rlsapp_team")] == ["b1"]
        assert QuerySet(model=Team).count() == 1
        # A server-side cursor, declared in autocommit mode: materialized inside our transaction.
        assert [t.name for t in QuerySet(model=Team).order_by("name").iterator(chunk_size=1)] == ["b1"]


def test_the_setting_lives_only_as_long_as_its_transaction(as_runtime):
    with for_company(A):
        assert raw_names() == ["a1", "a2"]
        # Between statements, outside any transaction, the connection holds nothing.
        assert setting_now(as_runtime) in {("", ""), (None, None)}
    with transaction.atomic():
        with for_company(A):
            assert raw_names() == ["a1", "a2"]
        assert raw_names() == []  # unbound again, in the same transaction
    assert setting_now(as_runtime) in {("", ""), (None, None)}


def test_a_savepoint_rollback_cannot_bring_back_another_tenant(as_runtime):
    with transaction.atomic():
        with for_company(B):
            assert raw_names() == ["b1"]
        with for_company(A):
            try:
                with transaction.atomic():
                    assert raw_names() == ["a1", "a2"]
                    raise RuntimeError("roll the savepoint back")
            except RuntimeError:
                pass
            # PostgreSQL restored B's value with the savepoint; A is bound now.
            assert raw_names() == ["a1", "a2"]
        assert raw_names() == []


def test_inside_atomic_the_value_is_set_once_per_transaction_and_tenant(as_runtime, monkeypatch):
    from cobee_django.db import rls

    calls = []
    real_set = rls._set
    monkeypatch.setattr(
        rls, "_set", lambda conn, values, sql, **kw: calls.append(values) or real_set(conn, values, sql, **kw)
    )
    with transaction.atomic():
        with for_company(A):
            for _ in range(3):
                assert raw_names() == ["a1", "a2"]
            with transaction.atomic():  # a released savepoint keeps the value
                assert raw_names() == ["a1", "a2"]
            assert raw_names() == ["a1", "a2"]
        with for_company(B):
            assert raw_names() == ["b1"]
            assert raw_names() == ["b1"]
        assert raw_names() == []
        assert raw_names() == []
    assert [ids for ids, _ in calls] == [f"{{{A}}}", f"{{{B}}}", ""]


def run_raw(sql: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


#: SQL of the application's own that makes the server hold B's companies while A is bound.
B_BEHIND_THE_WRAPPER = {
    "ROLLBACK TO SAVEPOINT": "ROLLBACK TO SAVEPOINT raw_sp",
    "rollback to savepoint, lower case, after a comment": "/* undo */ rollback to savepoint raw_sp",
    "set_config(..., true)": f"SELECT set_config('cobee.company_ids', '{{{B}}}', true)",
    "set_config(..., false)": f"SELECT set_config('cobee.company_ids', '{{{B}}}', false)",
    "SET LOCAL": f"SET LOCAL cobee.company_ids TO '{{{B}}}'",
    "SET": f"SET cobee.company_ids TO '{{{B}}}'",
    "RESET": "RESET cobee.company_ids",
    "RESET ALL": "RESET ALL",
}


@pytest.mark.parametrize("statement", B_BEHIND_THE_WRAPPER)
def test_sql_that_changes_the_setting_behind_the_wrapper_is_undone_before_the_next_statement(as_runtime, statement):
    with transaction.atomic():
        with for_company(B):
            assert raw_names() == ["b1"]
            run_raw("SAVEPOINT raw_sp")  # made while the server holds B's companies
        with for_company(A):
            assert raw_names() == ["a1", "a2"]
            run_raw(B_BEHIND_THE_WRAPPER[statement])
            # The server held B (or nothing) here; the bound tenant is A, and A is what the next statement sees.
            assert raw_names() == ["a1", "a2"]
            assert raw_names("SELECT name FROM rlsapp_team WHERE company_id = %s", [B]) == []
        assert raw_names() == []
    with for_company(A):
        assert raw_names() == ["a1", "a2"]
    assert raw_names() == []
    assert setting_now(as_runtime) in {("", ""), (None, None)}


@pytest.mark.parametrize(
    "statement",
    [
        "SET cobee.rls_bypass TO 'on'",
        "SELECT set_config('cobee.rls_bypass', 'on', false)",
        f"SELECT set_config('cobee.company_ids', '{{{B}}}', false)",
    ],
)
@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_a_session_level_setting_of_someones_sql_does_not_outlive_its_statement(as_runtime, statement, atomic):
    with transaction.atomic() if atomic else nullcontext():
        with unscoped():
            run_raw(statement)
        assert raw_names() == []  # nothing bound: no rows, whatever that SQL left behind
    assert raw_names() == []
    with for_company(A):
        assert raw_names() == ["a1", "a2"]
    assert raw_names() == []


def test_a_raw_rollback_of_the_whole_transaction_is_followed_by_the_bound_tenant(as_runtime):
    with for_company(A), transaction.atomic():
        assert raw_names() == ["a1", "a2"]
        with for_company(B):
            run_raw("ROLLBACK")  # ends the server's transaction: its settings go with it
            assert raw_names() == ["b1"]
        assert raw_names() == ["a1", "a2"]


def test_statements_after_a_resetting_one_in_the_same_execute_are_refused(as_runtime):
    with transaction.atomic(), for_company(A):
        assert raw_names() == ["a1", "a2"]
        run_raw("SAVEPOINT raw_sp")
        with pytest.raises(RowLevelSecurityError):
            raw_names("ROLLBACK TO SAVEPOINT raw_sp; SELECT name FROM rlsapp_team")
        # A statement may still end with one, and text in quotes or comments is not a statement.
        run_raw("SELECT 1; ROLLBACK TO SAVEPOINT raw_sp")
        assert raw_names("SELECT name FROM rlsapp_team WHERE name <> 'x; rollback' /* ; set x */ ORDER BY name") == [
            "a1",
            "a2",
        ]


def test_a_broken_transaction_keeps_djangos_error(as_runtime):
    with for_company(A), transaction.atomic():
        with pytest.raises(DatabaseError), transaction.atomic(savepoint=False):
            raw_names("SELECT no_such_column FROM rlsapp_team")
        with pytest.raises(transaction.TransactionManagementError):
            raw_names()


def test_threads_bound_to_different_companies_see_their_own_rows(as_runtime, runtime_role):
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    def worker(company):
        try:
            with connected_as(runtime_role), for_company(company):
                first = raw_names()
                barrier.wait()  # both threads hold their tenant at once
                with transaction.atomic():
                    seen[company] = (first, raw_names())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(company,)) for company in (A, C)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {A: (["a1", "a2"], ["a1", "a2"]), C: (["c1", "c2", "c3"], ["c1", "c2", "c3"])}


def test_a_stray_connection_in_autocommit_is_refused_not_left_unprotected(as_runtime, runtime_role):
    stray = as_runtime.__class__({**as_runtime.settings_dict})
    try:
        cursor = stray.cursor()
        with for_company(A), pytest.raises(RowLevelSecurityError, match="outside a transaction"):
            cursor.execute("SELECT name FROM rlsapp_team")
    finally:
        stray.close()


def test_a_broken_setting_elsewhere_neither_blocks_queries_nor_lowers_the_wall(as_runtime, settings):
    settings.COBEE_DJANGO = {"ROW_LEVEL_SECURITY": True}  # no ISSUER: the settings do not validate
    with for_company(A):
        assert raw_names() == ["a1", "a2"]
    assert raw_names() == []
    settings.COBEE_DJANGO = {}
    with unscoped():  # the wall is off: nothing is set, so the policies show nothing either way
        assert raw_names() == []


# --- writes -------------------------------------------------------------------------------------


def test_writes_into_another_company_fail(as_runtime):
    with for_company(A):
        with pytest.raises(DatabaseError, match="row-level security"):
            raw_names(INSERT_TEAM, [uuid.uuid4(), B])
        # (Citus refuses to move a row between shards before its policies get a say.)
        with pytest.raises(DatabaseError, match=r"row-level security|modifying the partition value"):
            raw_names("UPDATE rlsapp_team SET company_id = %s WHERE name = 'a1' RETURNING name", [B])
        assert raw_names("UPDATE rlsapp_team SET name = 'stolen' WHERE company_id = %s RETURNING name", [B]) == []
        assert raw_names("DELETE FROM rlsapp_team RETURNING name") == ["a1", "a2"]
    with unscoped():
        assert sorted(raw_names()) == ["b1", "c1", "c2", "c3"]


def test_writes_with_nothing_bound_fail(as_runtime):
    with pytest.raises(DatabaseError, match="row-level security"):
        raw_names(INSERT_TEAM, [uuid.uuid4(), A])


def test_foreign_keys_cannot_point_across_companies(as_runtime):
    with unscoped():
        b_team = Team.objects.get(name="b1").id
        a_team = Team.objects.get(name="a1").id
    insert = "INSERT INTO rlsapp_member (name, company_id, team_id) VALUES ('m', %s, %s) RETURNING name"
    with for_company(A):
        assert raw_names(insert, [A, a_team]) == ["m"]
        errors = []
        # Another company's existing row and a row that does not exist fail alike: no existence oracle.
        for target in (b_team, uuid.uuid4()):
            with pytest.raises(IntegrityError) as caught:
                raw_names(insert, [A, target])
            errors.append(str(caught.value).splitlines()[0])
        assert errors[0] == errors[1]
        assert "same_company" in errors[0]


# --- requests -----------------------------------------------------------------------------------


@pytest.fixture
def issuer(as_runtime, settings):
    """Tokens the application trusts, for requests that go through JWTAuthentication and the middleware."""
    issuer = TokenIssuer(issuer="https://tenant.example/", audience="https://api.example")
    settings.COBEE_DJANGO = {"ISSUER": issuer.issuer, "AUDIENCE": issuer.audience, "ROW_LEVEL_SECURITY": True}
    settings.ROOT_URLCONF = "tests.rlsapp.views"
    install_key_set(issuer.issuer, issuer.jwks())
    yield issuer
    uninstall_key_set(issuer.issuer)


@pytest.fixture
def api():
    return Client()


def as_caller(issuer, company=None, corporation=None) -> dict:
    return {"HTTP_AUTHORIZATION": issuer.bearer(company, corporation_id=corporation)} if company else {}


def test_a_raw_select_inside_a_request_returns_only_the_callers_rows(api, issuer):
    response = api.get("/raw-teams", **as_caller(issuer, A))
    assert response.status_code == 200
    assert response.json()["names"] == ["a1", "a2"]


@pytest.mark.parametrize("atomic_requests", [False, True], ids=["autocommit", "ATOMIC_REQUESTS"])
def test_consecutive_requests_on_one_connection_do_not_leak(api, issuer, as_runtime, monkeypatch, atomic_requests):
    # Django reads ATOMIC_REQUESTS from the configured databases, not from the connection.
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", atomic_requests)
    seen = []
    for caller, expected in [
        (as_caller(issuer, A), ["a1", "a2"]),
        (as_caller(issuer, C), ["c1", "c2", "c3"]),
        ({}, []),
        (as_caller(issuer, B, CORP), ["a1", "a2", "b1"]),
        (as_caller(issuer, B), ["b1"]),
    ]:
        body = api.get("/raw-teams", **caller).json()
        assert body["names"] == expected
        seen.append(body["pid"])
        assert setting_now(as_runtime) in {("", ""), (None, None)}
    assert len(set(seen)) == 1  # one server connection served them all


def test_a_request_cannot_insert_into_another_company(api, issuer):
    denied = api.post("/raw-teams", {"name": "x", "company": str(B)}, **as_caller(issuer, A))
    assert denied.status_code == 409
    assert "row-level security" in denied.json()["error"]
    allowed = api.post("/raw-teams", {"name": "a3", "company": str(A)}, **as_caller(issuer, A))
    assert allowed.status_code == 201
    assert api.get("/raw-teams", **as_caller(issuer, B)).json()["names"] == ["b1"]


# --- the bypass ---------------------------------------------------------------------------------


def test_unscoped_bypasses_and_logs_where_from(as_runtime, caplog):
    caplog.set_level(logging.INFO, logger="cobee_django.rls")
    with unscoped():
        assert len(raw_names()) == 6
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "rls_bypass"]
    assert record.location.startswith(__file__)
    assert "unscoped()" in record.getMessage()


def test_the_bypass_logs_once_per_transaction(as_runtime, caplog):
    caplog.set_level(logging.INFO, logger="cobee_django.rls")
    with unscoped(), transaction.atomic():
        for _ in range(3):
            assert len(raw_names()) == 6
    with unscoped():
        raw_names()
        raw_names()
    assert len([r for r in caplog.records if getattr(r, "event", None) == "rls_bypass"]) == 3


def test_nothing_is_logged_for_scoped_code(as_runtime, caplog):
    caplog.set_level(logging.INFO, logger="cobee_django.rls")
    with for_company(A):
        raw_names()
    assert not [r for r in caplog.records if getattr(r, "event", None) == "rls_bypass"]


# --- unsafe setups ------------------------------------------------------------------------------


def test_a_superuser_connection_is_refused_at_run_time(data, rls_on):
    with for_company(A), pytest.raises(RowLevelSecurityError, match=r"cobee_django\.E021"):
        raw_names()
    with unscoped():  # the owner's deliberate bypass (data migrations, maintenance) still runs
        assert len(raw_names()) == 6


@pytest.fixture
def extra_role(data):
    """Roles made for one test (``make(*attributes, member_of=role)``), dropped after it."""
    created = []

    def make(*attributes: str, member_of: str | None = None) -> str:
        with connection.cursor() as cursor:
            name = _create_role(cursor, *attributes)
            if member_of:
                cursor.execute(f'GRANT "{member_of}" TO "{name}"')
        created.append(name)
        return name

    yield make
    with connection.cursor() as cursor:
        for name in reversed(created):
            _drop_role(cursor, name)


@contextmanager
def owned_by(role: str, table: str = "rlsapp_note"):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = %s", [table])
        (owner,) = cursor.fetchone()
        cursor.execute(f'ALTER TABLE "{table}" OWNER TO "{role}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{table}" OWNER TO "{owner}"')


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("plain", []),
        ("bypassrls", ["cobee_django.E021"]),
        ("member of a BYPASSRLS role", ["cobee_django.E021"]),
        ("member of a table's owner", ["cobee_django.E022"]),
    ],
)
def test_role_checks(extra_role, rls_on, setup, expected):
    ownership = nullcontext()
    if setup == "plain":
        role = extra_role("NOBYPASSRLS")
    elif setup == "bypassrls":
        role = extra_role("BYPASSRLS")
    elif setup == "member of a BYPASSRLS role":
        role = extra_role("NOBYPASSRLS", member_of=extra_role("BYPASSRLS"))
    else:
        owner = extra_role("NOBYPASSRLS")
        role = extra_role("NOBYPASSRLS", member_of=owner)
        ownership = owned_by(owner)
    with ownership, connected_as(role) as runtime:
        problems = policy.role_problems(runtime)
        assert [p.id for p in problems] == expected
        if expected:
            with for_company(A), pytest.raises(RowLevelSecurityError, match=re.escape(expected[0])):
                raw_names()
        else:
            with for_company(A):
                assert raw_names() == ["a1", "a2"]
    if setup == "member of a table's owner":
        assert "rlsapp_note" in problems[0].msg


def test_the_superuser_is_reported(pg_db):
    assert {p.id for p in policy.role_problems(connection)} >= {"cobee_django.E021"}


def test_unprotected_tenant_tables_are_reported(pg_db):
    reported = " ".join(p.msg for p in policy.table_problems(connection) if p.id == "cobee_django.E023")
    assert "rlsapp.Note" in reported
    assert "rlsapp.Team" not in reported and "rlsapp.Member" not in reported


def test_a_widening_policy_is_reported(pg_db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE POLICY wide_open ON rlsapp_team USING (true)")
    try:
        problems = [p for p in policy.table_problems(connection) if "rlsapp.Team" in p.msg]
        assert [p.id for p in problems] == ["cobee_django.E023"]
        assert "wide_open" in problems[0].msg
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP POLICY wide_open ON rlsapp_team")


def test_cross_company_foreign_keys_are_reported(pg_db):
    messages = [p.msg for p in policy.foreign_key_problems(connection)]
    assert any("rlsapp.Note.member" in m for m in messages)
    assert not any("rlsapp.Member.team" in m for m in messages)


def test_deploy_checks_run_through_django(pg_db, rls_on):
    ids = {m.id for m in run_checks(include_deployment_checks=True, databases=["default"])}
    assert {"cobee_django.E021", "cobee_django.E023", "cobee_django.E024"} <= ids
    assert "cobee_django.E020" not in ids


def test_with_the_setting_off_only_forced_tables_are_reported(pg_db):
    messages = [m for m in run_checks(include_deployment_checks=True, databases=["default"])]
    ids = {m.id for m in messages if m.id and m.id.startswith(("cobee_django.E02", "cobee_django.W02"))}
    assert ids == {"cobee_django.W020"}
    (warning,) = [m for m in messages if m.id == "cobee_django.W020"]
    assert "rlsapp_team" in warning.msg and "rlsapp_member" in warning.msg and "rlsapp_note" not in warning.msg


# --- the migration operations -------------------------------------------------------------------


def test_enabling_is_reversible(pg_db):
    operation = EnableRowLevelSecurity("Team")
    state = ProjectState.from_apps(apps)

    def protected() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relrowsecurity, relforcerowsecurity, "
                "(SELECT count(*) FROM pg_policy WHERE polrelid = 'rlsapp_team'::regclass) "
                "FROM pg_class WHERE oid = 'rlsapp_team'::regclass"
            )
            return cursor.fetchone()

    assert protected() == (True, True, 2)
    try:
        with connection.schema_editor() as editor:
            operation.database_backwards("rlsapp", editor, state, state)
        assert protected() == (False, False, 0)
    finally:
        with connection.schema_editor() as editor:
            operation.database_forwards("rlsapp", editor, state, state)
    assert protected() == (True, True, 2)


def test_same_company_constraint_is_reversible(pg_db):
    operation = AddSameCompanyConstraint("Member", "team")
    state = ProjectState.from_apps(apps)
    assert not [p for p in policy.foreign_key_problems(connection) if "Member.team" in p.msg]
    try:
        with connection.schema_editor() as editor:
            operation.database_backwards("rlsapp", editor, state, state)
        assert [p for p in policy.foreign_key_problems(connection) if "Member.team" in p.msg]
    finally:
        with connection.schema_editor() as editor:
            operation.database_forwards("rlsapp", editor, state, state)
    assert not [p for p in policy.foreign_key_problems(connection) if "Member.team" in p.msg]


@pytest.mark.django_db
def test_the_test_app_migrations_are_complete():
    call_command("makemigrations", "rlsapp", "--check", "--dry-run", verbosity=0)


# --- on other databases -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_operations_emit_sql_only_on_postgresql(caplog, monkeypatch):
    monkeypatch.setattr("cobee_django.db.operations._skipped_vendors", set())
    state = ProjectState.from_apps(apps)
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        EnableRowLevelSecurity("Team").database_forwards("rlsapp", editor, state, state)
        AddSameCompanyConstraint("Member", "team").database_forwards("rlsapp", editor, state, state)
    sql = "\n".join(editor.collected_sql)
    if on_postgres():
        assert 'ALTER TABLE "rlsapp_team" FORCE ROW LEVEL SECURITY' in sql
        assert "CREATE POLICY cobee_tenant" in sql
        # The migration made that key already (on Citus, distributing the table does too): not twice.
        assert "rlsapp_member_team_id_same_company" not in sql
    else:
        assert sql == ""
        assert "need PostgreSQL" in caplog.text


def test_the_setting_on_another_database_is_a_clear_check_error(settings):
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ROW_LEVEL_SECURITY": True}
    errors = [m for m in run_checks() if m.id == "cobee_django.E020"]
    if on_postgres():
        assert errors == []
    else:
        (error,) = errors
        assert "PostgreSQL" in error.hint


def test_a_new_token_through_permission_classes_resolves_its_tenant_once(api, issuer, settings, runtime_role):
    """The test project's views ask for the tenant before any statement; resolving it writes the
    membership records, whose statements ask again: they must get no tenant, not a second
    resolution (which waited forever on the membership lock held by the first)."""
    settings.ROOT_URLCONF = "testproject.urls"
    token = issuer.make_token(uuid.uuid4(), uuid.uuid4(), scopes=["read:employees"])
    answers = []

    def call():
        try:
            with connected_as(runtime_role):  # in a thread (a deadlock fails the test instead of hanging it)
                answers.append(api.get("/api/v3/employees", HTTP_AUTHORIZATION=f"Bearer {token}").status_code)
        finally:
            connections.close_all()

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert answers == [200]


# --- which SQL may change the setting (no database) -----------------------------------------------


@pytest.mark.parametrize(
    ("sql", "resets"),
    [
        ("SELECT name FROM rlsapp_team WHERE company_id = %s", False),
        ('UPDATE "rlsapp_team" SET "name" = %s WHERE "id" = %s', False),
        ("SAVEPOINT s1", False),
        ("RELEASE SAVEPOINT s1", False),
        ("ROLLBACK TO SAVEPOINT s1", True),
        ("  -- why\n  /* and how */ rollback", True),
        ("ABORT", True),
        ("COMMIT", True),
        ("END", True),
        ("SET search_path TO public", True),
        ("set local cobee.company_ids to '{}'", True),
        ("RESET ALL", True),
        ("DISCARD ALL", True),
        ("CALL do_things()", True),
        ("DO $$ BEGIN PERFORM 1; END $$", True),
        ("EXECUTE prepared_one", True),
        ("SELECT SET_CONFIG('cobee.rls_bypass', 'on', false)", True),
        ("SELECT 1; SELECT 2", False),
        ("SELECT 1; ROLLBACK TO SAVEPOINT s1", True),
        ("SELECT 'a; rollback'; SELECT \"b;set\"", False),
        ("SELECT $tag$ ; reset all $tag$", False),
    ],
)
def test_which_sql_may_change_the_setting(sql, resets):
    from cobee_django.db.rls import may_reset

    assert may_reset(sql, bound=True) is resets


@pytest.mark.parametrize(
    "sql",
    [
        "ROLLBACK TO SAVEPOINT s1; SELECT 1",
        "set x to 1 ; select 1",
        "SELECT 1; COMMIT; SELECT 2",
        "DO $$ x $$; SELECT 1",
    ],
)
def test_statements_after_a_resetting_one_are_refused_only_with_a_tenant_bound(sql):
    from cobee_django.db.rls import may_reset

    with pytest.raises(RowLevelSecurityError):
        may_reset(sql, bound=True)
    assert may_reset(sql, bound=False) is True  # migrations and maintenance, nothing bound
