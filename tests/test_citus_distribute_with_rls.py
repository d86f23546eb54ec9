"""Distributing a table that already holds rows under forced row-level security, in either migration order.

Runs on a Citus coordinator, as ``tests/test_citus_operations.py`` does (same fixtures). The migrating
role is a plain role that owns the tables, which ``FORCE ROW LEVEL SECURITY`` holds: Citus copies the
rows as that role, so without care ``create_distributed_table`` fails ("COPY FROM not supported with
row-level security") or copies nothing. Both orders of ``EnableRowLevelSecurity`` and
``DistributeTenantModel`` must keep every row and leave every shard protected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.db import connection, connections
from django.db.migrations.state import ProjectState

from cobee_django.db.citus import DistributeTenantModel, _placement
from cobee_django.db.operations import EnableRowLevelSecurity
from cobee_django.models import Company
from cobee_django.state import unscoped
from tests.rlsapp.models import Team
from tests.test_citus_operations import _rows, cluster, owner  # noqa: F401 (fixtures)
from tests.test_rls import connected_as

pytestmark = [pytest.mark.citus, pytest.mark.django_db(transaction=True)]

TABLE = "rlsapp_team"
#: The app's tables: distributing the team table drops and adds the keys of the other two.
APP_TABLES = ("rlsapp_team", "rlsapp_member", "rlsapp_note")


@pytest.fixture
def teams(cluster, owner) -> Iterator[int]:  # noqa: F811
    """Teams of three companies in the (still local) protected table, which the owner role owns."""
    previous = _rows("SELECT relowner::regrole::text FROM pg_class WHERE oid = %s::regclass", [TABLE])[0][0]
    for table in APP_TABLES:
        _rows(f'ALTER TABLE {table} OWNER TO "{owner}"')
    with unscoped():
        for i in range(3):
            company = Company.objects.create(name=f"Order {i}")
            for j in range(5):
                Team.objects.create(company=company, name=f"t{j}")
    yield 15
    if _placement(connection, TABLE) is not None:  # a failed test: leave the table as the next one expects
        _run("backwards", DistributeTenantModel("Team"))
    for table in APP_TABLES:
        _rows(f"ALTER TABLE {table} OWNER TO {previous}")


def _run(direction: str, operation: DistributeTenantModel | EnableRowLevelSecurity) -> None:
    """Run a migration operation of ``tests.rlsapp`` as the current ``connections["default"]``."""
    state = ProjectState.from_apps(apps)
    conn = connections["default"]
    with conn.schema_editor(atomic=True) as editor:
        method = operation.database_forwards if direction == "forwards" else operation.database_backwards
        method("rlsapp", editor, state, state)


def _count() -> int:
    return int(_rows(f"SELECT count(*) FROM {TABLE}")[0][0])


def _protected_everywhere() -> bool:
    """Forced row-level security and both policies on the table and on each of its shards."""
    table = _rows(
        "SELECT relrowsecurity AND relforcerowsecurity AND (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) = 2 "
        "FROM pg_class c WHERE oid = %s::regclass",
        [TABLE],
    )[0][0]
    shards = _rows(
        "SELECT DISTINCT result FROM run_command_on_shards(%s, $$SELECT (relrowsecurity AND relforcerowsecurity AND "
        "(SELECT count(*) FROM pg_policy WHERE polrelid = c.oid) = 2)::text FROM pg_class c "
        "WHERE oid = '%%s'::regclass$$)",
        [TABLE],
    )
    return bool(table) and shards == [("true",)]


def test_protected_first_then_distributed_keeps_every_row(teams, owner):  # noqa: F811
    assert _count() == teams
    with connected_as(owner):
        _run("forwards", DistributeTenantModel("Team"))
    assert _placement(connection, TABLE).method == "h"
    assert _count() == teams
    assert _protected_everywhere()
    with connected_as(owner):  # and back: undistribute_table copies the rows too
        _run("backwards", DistributeTenantModel("Team"))
    assert _placement(connection, TABLE) is None
    assert _count() == teams
    assert _rows("SELECT relforcerowsecurity FROM pg_class WHERE oid = %s::regclass", [TABLE]) == [(True,)]


def test_distributed_first_then_protected_keeps_every_row(teams, owner):  # noqa: F811
    with connected_as(owner):
        _run("backwards", EnableRowLevelSecurity("Team"))
        try:
            _run("forwards", DistributeTenantModel("Team"))
        finally:
            _run("forwards", EnableRowLevelSecurity("Team"))
    assert _placement(connection, TABLE).method == "h"
    assert _count() == teams
    assert _protected_everywhere()


def test_policies_written_on_plain_postgresql_are_rewritten_for_citus(teams, owner):  # noqa: F811
    """A table protected before the extension existed (the subquery form) is distributed all the same."""
    from cobee_django.db import policy

    quote = connection.ops.quote_name
    with connected_as(owner):
        _run("backwards", EnableRowLevelSecurity("Team"))
        with connections["default"].cursor() as cursor:
            for sql in policy.enable_sql(TABLE, "company_id", quote, citus=False):
                cursor.execute(sql)
        _run("forwards", DistributeTenantModel("Team"))
    assert _count() == teams
    assert _protected_everywhere()
    tests = {
        r[0]
        for r in _rows("SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = %s::regclass", [TABLE])
    }
    assert not any("SELECT" in test for test in tests)


def test_a_company_sees_only_its_rows_after_distribution(teams, owner):  # noqa: F811
    """The wall still holds on the shards after the owner distributed the table with FORCE lifted."""
    with connected_as(owner):
        _run("forwards", DistributeTenantModel("Team"))
    company = uuid.UUID(str(_rows(f"SELECT company_id FROM {TABLE} LIMIT 1")[0][0]))
    with connected_as(owner) as conn, conn.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        unbound = cursor.fetchone()[0]
        cursor.execute("SET LOCAL citus.propagate_set_commands TO 'local'")
        cursor.execute("SET LOCAL cobee.company_ids TO %s", ["{" + str(company) + "}"])
        cursor.execute(f"SELECT count(DISTINCT company_id), count(*) FROM {TABLE}")
        bound = cursor.fetchone()
        cursor.execute("ROLLBACK")
    assert unbound == 0  # FORCE is back: the owner itself sees nothing unbound
    assert bound == (1, 5)
