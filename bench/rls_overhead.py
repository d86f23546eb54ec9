"""What the row-level security wall costs per statement, measured side by side in one run.

Usage (PostgreSQL only; the database is migrated, filled with a few thousand rows, then cleaned):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cobee_bench python bench/rls_overhead.py

The connecting role must be a superuser: it creates a plain runtime role for the measured
connection, and serves as the "no wall" baseline (superusers are not held by row-level security).
Each figure is the median over several rounds of microseconds per statement.
"""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.db.backends.base.base import BaseDatabaseWrapper  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from cobee_django.models import Company  # noqa: E402
from cobee_django.state import for_company, unscoped  # noqa: E402
from tests.rlsapp.models import Team  # noqa: E402

COMPANIES = 20
TEAMS_PER_COMPANY = 500
STATEMENTS = 300
ROUNDS = 15
BOUND = uuid.uuid4()


@contextmanager
def walled(runtime: BaseDatabaseWrapper | None):
    """Nothing (the superuser, setting off), or the runtime role's connection with the wall on."""
    if runtime is None:
        yield
        return
    original = connections["default"]
    connections["default"] = runtime
    try:
        with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, "ROW_LEVEL_SECURITY": True}):
            yield
    finally:
        connections["default"] = original


def one_round(statement: Callable[[], object], atomic: bool, runtime: BaseDatabaseWrapper | None) -> float:
    """Microseconds per statement over one round; ``atomic`` runs the round inside one transaction."""
    with walled(runtime), for_company(BOUND), transaction.atomic() if atomic else nullcontext():
        start = time.perf_counter()
        for _ in range(STATEMENTS):
            statement()
        return (time.perf_counter() - start) / STATEMENTS * 1e6


def select_one() -> object:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()


def raw_page() -> object:
    # The same filter with or without the wall, so both do the same work.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM rlsapp_team WHERE company_id = %s ORDER BY name LIMIT 20", [BOUND])
        return cursor.fetchall()


def orm_page() -> object:
    return list(Team.objects.order_by("name")[:20])


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    call_command("migrate", verbosity=0)
    companies = [BOUND] + [uuid.uuid4() for _ in range(COMPANIES - 1)]
    role = f"cobee_rls_bench_{secrets.token_hex(4)}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
        cursor.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    Company.objects.bulk_create([Company(id=c, name=f"bench {c}") for c in companies])
    with unscoped():
        Team.objects.bulk_create(
            [Team(company_id=c, name=f"team {i:04}") for c in companies for i in range(TEAMS_PER_COMPANY)]
        )
    original = connections["default"]
    runtime = original.__class__({**original.settings_dict, "USER": role, "PASSWORD": "", "CONN_MAX_AGE": 600})
    results: dict[tuple[str, str], tuple[float, float]] = {}
    try:
        with override_settings(DEBUG=False):
            for label, statement in (("SELECT 1", select_one), ("raw page", raw_page), ("ORM page", orm_page)):
                for atomic in (False, True):
                    # Rounds alternate, so a busy machine slows both sides alike.
                    bare, wall = [], []
                    for _ in range(ROUNDS):
                        bare.append(one_round(statement, atomic, None))
                        wall.append(one_round(statement, atomic, runtime))
                    mode = "in atomic()" if atomic else "autocommit"
                    results[(label, mode)] = statistics.median(bare), statistics.median(wall)
    finally:
        runtime.close()
        with unscoped():
            Team.objects.filter(company_id__in=companies).delete()
        Company.objects.filter(id__in=companies).delete()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server,) = cursor.fetchone()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; Python {platform.python_version()}, "
        f"Django {django.get_version()}, PostgreSQL {server}; {COMPANIES * TEAMS_PER_COMPANY} rows, "
        f"{STATEMENTS} statements x {ROUNDS} rounds"
    )
    print(f"{'statement':<10} {'mode':<12} {'no wall us':>11} {'wall us':>9} {'ratio':>6}")
    for label in ("SELECT 1", "raw page", "ORM page"):
        for mode in ("autocommit", "in atomic()"):
            bare, wall = results[(label, mode)]
            print(f"{label:<10} {mode:<12} {bare:>11.1f} {wall:>9.1f} {wall / bare:>5.2f}x")


if __name__ == "__main__":
    main()
