"""What the row-level security wall costs per statement, against the same statements without it.

    python -m bench.bench_rls [--statements 300] [--rounds 15]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default the local ``cobee_bench`` database, created and
migrated here) reached as a superuser: it creates a plain runtime role for the measured
connection, and serves as the baseline (superusers are not held by row-level security, and the
setting is off for them). Both sides bind the same company and run the same statements, on their
own persistent connection; a round runs ``--statements`` statements, autocommit or inside one
``atomic()``. The rows and the role are removed at the end.

A third side, "wall, no check", runs the wall without its look at each statement's text (whether it
may change the setting behind the wrapper's back: ``rls.may_reset``), as the wrapper ran before that
check existed; "wall / wall, no check" is what the check costs. A last pair of rounds measures a
statement after one that resets the setting (``SET LOCAL``), against a statement after a plain one.

No target: the figures are documented in docs/row-level-security.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import dj_database_url

from bench.common import database_url, interleave, print_environment, ratio, report
from bench.data import ensure_database

COMPANIES = 20
TEAMS_PER_COMPANY = 500
BOUND = uuid.uuid4()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=300, help="statements per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_environment:
        print_environment()

    url = database_url()
    ensure_database(dj_database_url.parse(url))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"  # the test app's protected tenant tables
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections, transaction
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.test.utils import override_settings

    from cobee_django.models import Company
    from cobee_django.state import for_company, unscoped
    from tests.rlsapp.models import Team

    call_command("migrate", verbosity=0)

    @contextmanager
    def walled(runtime: BaseDatabaseWrapper | None) -> Iterator[None]:
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

    from cobee_django.db import rls

    checked = rls.may_reset

    def never(sql: str, *, bound: bool) -> bool:
        return False

    def measure(
        statement: Callable[[], Any], atomic: bool, runtime: BaseDatabaseWrapper | None, check: bool = True
    ) -> Callable[[], float]:
        def one_round() -> float:
            """Seconds per statement over one round."""
            rls.may_reset = checked if check else never  # type: ignore[assignment]
            try:
                with walled(runtime), for_company(BOUND), transaction.atomic() if atomic else nullcontext():
                    start = time.perf_counter()
                    for _ in range(args.statements):
                        statement()
                    return (time.perf_counter() - start) / args.statements
            finally:
                rls.may_reset = checked

        return one_round

    def select_one() -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()

    def raw_page() -> Any:
        # The same filter with or without the wall, so both sides do the same work.
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM rlsapp_team WHERE company_id = %s ORDER BY name LIMIT 20", [BOUND])
            return cursor.fetchall()

    def orm_page() -> Any:
        return list(Team.objects.order_by("name")[:20])

    def after_a_reset() -> Any:
        # Someone's SQL resets the setting; the statement after it must set it again (one more round trip).
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL cobee.company_ids TO ''")
            cursor.execute("SELECT 1")
            return cursor.fetchone()

    def after_a_select() -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 2")
            cursor.execute("SELECT 1")
            return cursor.fetchone()

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
    try:
        with override_settings(DEBUG=False):
            for label, statement in (("SELECT 1", select_one), ("raw page", raw_page), ("ORM page", orm_page)):
                for atomic in (False, True):
                    mode = "inside atomic()" if atomic else "autocommit"
                    results = interleave(
                        {
                            "bare": measure(statement, atomic, None),
                            "wall": measure(statement, atomic, runtime),
                            "unchecked": measure(statement, atomic, runtime, check=False),
                        },
                        args.rounds,
                    )
                    result = ratio(results["wall"], results["bare"])
                    report(f"rls {label}, {mode} / no wall", result, unit="us per statement", scale=1e6)
                    result = ratio(results["wall"], results["unchecked"])
                    report(f"rls {label}, {mode} / wall, no check", result, unit="us per statement", scale=1e6)
            results = interleave(
                {"reset": measure(after_a_reset, True, runtime), "select": measure(after_a_select, True, runtime)},
                args.rounds,
            )
            result = ratio(results["reset"], results["select"])
            report("rls SET LOCAL + SELECT / SELECT + SELECT, inside atomic()", result, unit="us per pair", scale=1e6)
    finally:
        runtime.close()
        with unscoped():  # deleting companies looks for their tenant rows: a cascade needs a scope
            Team.objects.filter(company_id__in=companies).delete()
            Company.objects.filter(id__in=companies).delete()
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')


if __name__ == "__main__":
    main()
