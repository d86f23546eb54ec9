"""Converting plain PostgreSQL onto Citus with ``manage.py citus_convert``: every row kept, every wall holding.

The operator's path, end to end, with the test project's seeded data: migrate and seed on plain
PostgreSQL (the distribution migration runs there as a no-op, the policies are written in their
plain form), ``pg_dump | psql`` onto a new database of the Citus cluster, ``citus_convert``, then
``check`` (no ``E041``), ``migrate`` (nothing to apply), the same rows per table and per company,
and row-level security holding on the shards for a runtime role: each company sees exactly its own
rows, nothing unbound, and cannot write into another company.

Needs ``DATABASE_URL`` on a Citus coordinator (its test database names the workers) and a plain
PostgreSQL server (``COBEE_CONVERT_SOURCE_URL``, default the local one on port 5432). Skipped
without them, unless ``COBEE_REQUIRE_CITUS=1``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.db import connection

from cobee_django.db import citus
from cobee_django.db._citus_nodes import Node, coordinator_and_workers

ROOT = Path(__file__).resolve().parent.parent
SOURCE_URL = os.environ.get("COBEE_CONVERT_SOURCE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
pytestmark = pytest.mark.citus

TENANT_TABLES = ("api_benefitbagconfig", "api_benefitmodel", "api_consumption", "api_employee")
REGISTRY = ("cobee_django_company", "cobee_django_corporation")


def _skip(reason: str) -> None:
    if os.environ.get("COBEE_REQUIRE_CITUS"):
        pytest.fail(f"COBEE_REQUIRE_CITUS is set but {reason}")
    pytest.skip(reason)


def _url(base: str, database: str, user: str | None = None) -> str:
    parts = urlsplit(base)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", "", ""))


def _sql(url: str, *statements: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows: list[tuple[object, ...]] = []
        for sql in statements:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        return rows


def _manage(database_url: str, var_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py`` of the test project against ``database_url``."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "DATABASE_URL": database_url,
        "COBEE_DEMO_VAR_DIR": str(var_dir),
        **env,
    }
    environment.pop("MIGRATE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )


def _counts(url: str) -> dict[str, int]:
    counts = {}
    for table in (*TENANT_TABLES, *REGISTRY):
        counts[table] = int(_sql(url, f"SELECT count(*) FROM {table}")[0][0])
    for table in TENANT_TABLES:
        for company, count in _sql(url, f"SELECT company_id::text, count(*) FROM {table} GROUP BY 1"):
            counts[f"{table}:{company}"] = int(count)
    return counts


def citus_required() -> tuple[Node | None, list[Node]]:
    """The test database's coordinator and workers; skip (or fail, in CI) without a Citus cluster."""
    if connection.vendor != "postgresql" or not citus.is_citus(connection):
        _skip("needs DATABASE_URL on a Citus coordinator (see docs/scaling-out.md)")
    coordinator, workers = coordinator_and_workers(connection)
    if not workers:
        _skip("the Citus test database has no workers")
    return coordinator, workers


@contextmanager
def cluster_database(name: str) -> Iterator[str]:
    """A new database ``name`` on every node of the test database's cluster, the workers registered."""
    coordinator, workers = citus_required()
    settings = connection.settings_dict
    base = f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/postgres"
    nodes = [(settings["HOST"], int(settings["PORT"])), *((w.host, w.port) for w in workers)]
    node_urls = [f"postgres://{settings['USER']}@{host}:{port}/postgres" for host, port in nodes]
    try:
        for url in node_urls:
            _sql(url, f'CREATE DATABASE "{name}"')
            _sql(_url(url, name), "CREATE EXTENSION IF NOT EXISTS citus")
        target = _url(base, name)
        if coordinator is not None:
            _sql(target, "SELECT citus_set_coordinator_host(%s, %s)", params=[coordinator.host, coordinator.port])
        for worker in workers:
            _sql(target, "SELECT citus_add_node(%s, %s)", params=[worker.host, worker.port])
        yield target
    finally:
        for url in node_urls:
            _sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def databases(db) -> Iterator[tuple[str, str]]:
    """A plain PostgreSQL database and an empty one on every node of the Citus cluster (same name)."""
    citus_required()
    try:
        _sql(SOURCE_URL, "SELECT 1")
        plain = not _sql(SOURCE_URL, "SELECT 1 FROM pg_extension WHERE extname = 'citus'")
    except psycopg.OperationalError as error:
        _skip(f"no plain PostgreSQL at COBEE_CONVERT_SOURCE_URL ({error})")
    if not plain:
        _skip("COBEE_CONVERT_SOURCE_URL is a Citus server, not plain PostgreSQL")
    name = f"cobee_convert_{secrets.token_hex(4)}"
    _sql(SOURCE_URL, f'CREATE DATABASE "{name}"')
    try:
        with cluster_database(name) as target:
            yield _url(SOURCE_URL, name), target
    finally:
        _sql(SOURCE_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def runtime_role(databases) -> Iterator[str]:
    """A role row-level security holds (Citus creates it on every node), dropped afterwards."""
    _, target = databases
    name = f"cobee_convert_rt_{secrets.token_hex(3)}"
    _sql(target, f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS')
    yield name
    _sql(target, f'DROP OWNED BY "{name}"', f'DROP ROLE "{name}"')


def test_a_plain_postgresql_database_converts_onto_citus_with_every_row_and_wall(databases, runtime_role, tmp_path):
    source, target = databases

    # 1. The project on plain PostgreSQL: migrated (the distribution migration a no-op) and seeded.
    for args in (("migrate", "-v0"), ("shell", "-c", "from testproject.api import seed; seed.seed()")):
        done = _manage(source, tmp_path, *args)
        assert done.returncode == 0, done.stderr
    source_counts = _counts(source)
    companies = sorted({key.split(":")[1] for key in source_counts if ":" in key})
    assert len(companies) >= 3 and source_counts["api_consumption"] > 0

    # 2. Copied onto the coordinator, as the tables still are: local, with their plain-form policies.
    dump = subprocess.run(
        ["pg_dump", "--no-owner", "--no-privileges", source], capture_output=True, check=True, timeout=300
    )
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", target], input=dump.stdout, capture_output=True, check=True
    )
    assert _counts(target) == source_counts
    refused = _manage(target, tmp_path, "migrate")
    assert refused.returncode != 0 and "cobee_django.E041" in refused.stderr  # why the command is needed

    # 3. The conversion.
    converted = _manage(target, tmp_path, "citus_convert")
    assert converted.returncode == 0, converted.stderr
    assert "every row kept" in converted.stdout
    assert _counts(target) == source_counts
    placements = dict(
        _sql(
            target,
            "SELECT logicalrelid::regclass::text, partmethod FROM pg_dist_partition WHERE logicalrelid::text "
            "= ANY (%s)",
            params=[[*TENANT_TABLES, *REGISTRY]],
        )
    )
    assert placements == {**dict.fromkeys(TENANT_TABLES, "h"), **dict.fromkeys(REGISTRY, "n")}
    checked = _manage(target, tmp_path, "check", "--database", "default")
    assert checked.returncode == 0, checked.stderr
    assert "No migrations to apply" in _manage(target, tmp_path, "migrate").stdout
    again = _manage(target, tmp_path, "citus_convert")  # a second run changes nothing
    assert again.returncode == 0, again.stderr
    assert _counts(target) == source_counts

    # 4. The walls, as a runtime role: every shard protected, each company alone with its rows.
    _sql(
        target,
        "SET citus.multi_shard_modify_mode TO 'sequential'",
        f'GRANT USAGE ON SCHEMA public TO "{runtime_role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{runtime_role}"',
    )
    for table in TENANT_TABLES:
        shards = _sql(
            target,
            "SELECT DISTINCT result FROM run_command_on_shards(%s, $$SELECT (c.relrowsecurity AND "
            "c.relforcerowsecurity AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) = 2)::text "
            "FROM pg_class c WHERE c.oid = '%%s'::regclass$$)",
            params=[table],
        )
        assert shards == [("true",)], table
    as_runtime = _url(target, target.rpartition("/")[2], user=runtime_role)
    with psycopg.connect(as_runtime) as conn:
        for table in TENANT_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)  # nothing bound, nothing seen
        conn.rollback()
        for company in companies:
            with conn.transaction():
                conn.execute("SET LOCAL citus.propagate_set_commands TO 'local'")
                conn.execute(f"SET LOCAL cobee.company_ids TO '{{{company}}}'")
                for table in TENANT_TABLES:
                    seen = conn.execute(f"SELECT company_id::text, count(*) FROM {table} GROUP BY 1").fetchall()
                    expected = source_counts.get(f"{table}:{company}")
                    assert seen == ([(company, expected)] if expected else []), (table, company)
        other = next(c for c in companies if c != companies[0])
        insert_elsewhere = (
            "INSERT INTO api_benefitmodel (id, company_id, name, description) VALUES (gen_random_uuid(), %s, 'x', '')"
        )
        with conn.transaction():
            conn.execute("SET LOCAL citus.propagate_set_commands TO 'local'")
            conn.execute(f"SET LOCAL cobee.company_ids TO '{{{companies[0]}}}'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(insert_elsewhere, [other])
    deploy = _manage(as_runtime, tmp_path, "check", "--deploy", "--database", "default", COBEE_ROW_LEVEL_SECURITY="1")
    assert "System check identified" in deploy.stdout + deploy.stderr, deploy.stderr
    assert "cobee_django.E02" not in deploy.stdout + deploy.stderr, deploy.stderr
    assert _counts(target) == source_counts
