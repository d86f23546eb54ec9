"""The roles of docs/row-level-security.md on a Citus cluster: the documented SQL, run as written, works on every node.

Citus creates roles on the workers, but not the schema's owner, the database's and the schema's
grants or the default privileges; the documented statements must set them on every node, or the
owner's first migration fails on a worker ("permission denied for schema public"). This runs both
SQL blocks of the page (the roles, then the Citus one) on a new database of the cluster, migrates
the test project as the owner role, seeds it, and reads the rows on the shards as the runtime role.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.test_citus_convert import _manage, _sql, _url, citus_required, cluster_database

pytestmark = pytest.mark.citus

PAGE = Path(__file__).resolve().parent.parent / "docs" / "row-level-security.md"


def documented_sql() -> list[str]:
    """The page's role block and its Citus block, as written."""
    blocks = re.findall(r"```sql\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    roles = next(b for b in blocks if "CREATE ROLE app_owner" in b)
    on_workers = next(b for b in blocks if "run_command_on_workers" in b)
    return [roles, on_workers]


def _statements(block: str, database: str, owner: str, runtime: str) -> list[str]:
    block = re.sub(r"--[^\n]*", "", block)
    block = block.replace("PASSWORD '...'", "PASSWORD 'pw'").replace("DATABASE app ", f'DATABASE "{database}" ')
    block = re.sub(r"\bapp_owner\b", owner, re.sub(r"\bapp_runtime\b", runtime, block))
    return [s.strip() for s in re.split(r";\s*\n", block) if s.strip()]


@pytest.fixture
def cluster_roles(db) -> Iterator[tuple[str, str, str]]:
    """A new database on every node and the names of two roles the test creates; both dropped afterwards."""
    _, workers = citus_required()
    name = f"cobee_roles_{secrets.token_hex(4)}"
    owner, runtime = f"{name}_owner", f"{name}_runtime"
    settings = connection.settings_dict
    nodes = [(settings["HOST"], settings["PORT"]), *((w.host, w.port) for w in workers)]
    try:
        with cluster_database(name) as target:
            yield target, owner, runtime
    finally:
        # The roles' objects went with the database; drop the roles on each node (whichever has them).
        for host, port in nodes:
            url = f"postgres://{settings['USER']}@{host}:{port}/postgres"
            _sql(
                url,
                "SET citus.enable_ddl_propagation TO off",
                *(f'DROP ROLE IF EXISTS "{r}"' for r in (owner, runtime)),
            )


def test_the_documented_role_sql_lets_the_owner_migrate_and_the_runtime_role_read_on_every_node(
    cluster_roles, tmp_path
):
    target, owner, runtime = cluster_roles
    database = target.rpartition("/")[2]
    for block in documented_sql():
        for statement in _statements(block, database, owner, runtime):
            rows = _sql(target, statement)
            if "run_command_on_workers" in statement and rows:
                assert all(row[2] for row in rows), rows  # success on every worker
    owners = _sql(
        target,
        "SELECT result FROM run_command_on_workers($$SELECT nspowner::regrole::text FROM pg_namespace "
        "WHERE nspname = 'public'$$)",
    )
    assert {row[0] for row in owners} == {owner}

    as_owner = _url(target, database, user=f"{owner}:pw")
    migrated = _manage(as_owner, tmp_path, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    tables = _sql(target, "SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE partmethod = 'h'")
    assert {"api_employee", "api_consumption"} <= {row[0] for row in tables}
    seeded = _manage(target, tmp_path, "shell", "-c", "from testproject.api import seed; seed.seed()")
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    company, expected = _sql(target, "SELECT company_id::text, count(*) FROM api_employee GROUP BY 1 LIMIT 1")[0]

    with psycopg.connect(_url(target, database, user=f"{runtime}:pw")) as conn:
        assert conn.execute("SELECT count(*) FROM api_employee").fetchone() == (0,)
        conn.rollback()
        with conn.transaction():
            conn.execute("SET LOCAL citus.propagate_set_commands TO 'local'")
            conn.execute(f"SET LOCAL cobee.company_ids TO '{{{company}}}'")
            seen = conn.execute("SELECT company_id::text, count(*) FROM api_employee GROUP BY 1").fetchall()
    assert seen == [(company, expected)]
    deploy = _manage(
        _url(target, database, user=f"{runtime}:pw"),
        tmp_path,
        "check",
        "--deploy",
        "--database",
        "default",
        COBEE_ROW_LEVEL_SECURITY="1",
    )
    assert "System check identified" in deploy.stdout + deploy.stderr, deploy.stderr
    assert "cobee_django.E02" not in deploy.stdout + deploy.stderr, deploy.stderr
