"""The test project on Citus against the same on plain PostgreSQL, side by side in one run.

    python -m bench.bench_citus [--sizes 100000,1000000] [--rounds 15] [--repeat 10]
    python -m bench citus --quick

Two databases per table size, filled alike (``bench.data``: 100 employees per company, companies
1-50 one corporation): plain PostgreSQL ``<bench database>_<size>`` (``BENCH_DATABASE_URL``; the
data-scale benchmark's, shared with it) and, on the Citus coordinator of ``BENCH_CITUS_URL``
(default ``postgres://postgres@127.0.0.1:9700/cobee_bench_citus``, a database that must already
exist on every node with the workers registered), a schema ``bench_<size>`` where the tenant tables
are distributed by company, co-located (``bench_<size>_<n>_shards`` with ``--shard-count n``).
Both are created, migrated and filled once, then reused.

Measures, interleaved in rounds (wall clock), Citus / plain PostgreSQL:

- one company's employees through the scoped manager (100 rows);
- a 50-company corporation's first page (``Employee.objects`` under the corporation, 50 rows in
  the model's order);
- the whole request ``GET /api/v3/companies/{companyId}/employees`` (a verified token, the tenant
  middleware, the permission classes, the serializer), and ``GET /api/v3/employees`` with a
  corporation token (its first page), through Django's WSGI handler.

Targets: one company <= 1.3x, the corporation's first page <= 2x, and the cost follows the
tenant's rows, not the table's (the largest size against the smallest, on Citus).
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import database_url, figure, interleave, print_environment, ratio, report

DEFAULT_CITUS_URL = "postgres://postgres@127.0.0.1:9700/cobee_bench_citus"
PER_COMPANY = 100
PAGE_SIZE = 50
#: The tenant tables of the test project, distributed by company in one co-location group.
TENANT_TABLES = ("api_employee", "api_benefitmodel", "api_benefitbagconfig", "api_consumption")


def schema(size: int, shard_count: int | None) -> str:
    """The Citus schema of one table size (and shard count, when not Citus's default)."""
    return f"bench_{size}" + (f"_{shard_count}_shards" if shard_count else "")


def citus_url() -> str:
    return os.environ.get("BENCH_CITUS_URL") or DEFAULT_CITUS_URL


def check_cluster(alias: str) -> None:
    """Refuse clearly when the Citus database is missing, has no extension or no workers."""
    from django.db import connections

    connection = connections[alias]
    try:
        connection.ensure_connection()
    except Exception as exc:
        raise SystemExit(
            f"bench citus: cannot connect to {citus_url()} ({type(exc).__name__}); create that database on every "
            "node of a Citus cluster first, with the workers registered (BENCH_CITUS_URL names another one)"
        ) from exc
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citus'")
        if not cursor.fetchone()[0]:
            raise SystemExit(f"bench citus: {citus_url()} has no Citus extension")
        cursor.execute("SELECT count(*) FROM citus_get_active_worker_nodes()")
        if not cursor.fetchone()[0]:
            raise SystemExit(f"bench citus: {citus_url()} has no workers registered")


def distribute(alias: str, shard_count: int | None) -> None:
    """Distribute the tenant tables by company (nothing to do when the migrations already did).

    Citus wants every unique key to hold the company: the primary keys become ``(company_id, id)``,
    and foreign keys are left out (the company registry stays a local table on the coordinator).
    """
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h' AND logicalrelid = 'api_employee'::regclass"
        )
        if cursor.fetchone()[0]:
            return
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE conrelid::regclass::text = ANY (%s) "
            "AND (contype = 'f' OR (contype IN ('p', 'u') AND NOT (SELECT attnum FROM pg_attribute "
            "WHERE attrelid = conrelid AND attname = 'company_id') = ANY (conkey))) ORDER BY contype = 'f' DESC",
            [list(TENANT_TABLES)],
        )
        for table, name in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}" CASCADE')
        for table in TENANT_TABLES:
            cursor.execute(
                "SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
                [table],
            )
            if not cursor.fetchone():
                cursor.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (company_id, id)")
        first, *others = TENANT_TABLES
        if shard_count:
            cursor.execute("SELECT create_distributed_table(%s, 'company_id', shard_count => %s)", [first, shard_count])
        else:
            cursor.execute("SELECT create_distributed_table(%s, 'company_id')", [first])
        for table in others:
            cursor.execute("SELECT create_distributed_table(%s, 'company_id', colocate_with => %s)", [table, first])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="employees per table, comma-separated")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=10, help="queries or requests per measure per round")
    parser.add_argument("--shard-count", type=int, help="shards of a new schema (default: Citus's citus.shard_count)")
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import dj_database_url
    from django.conf import settings

    base = database_url()
    for size in sizes:
        settings.DATABASES[f"plain_{size}"] = {**dj_database_url.parse(f"{base}_{size}"), "CONN_MAX_AGE": None}
        citus = dj_database_url.parse(citus_url())
        citus["OPTIONS"] = {"options": f"-c search_path={schema(size, args.shard_count)}"}
        settings.DATABASES[f"citus_{size}"] = {**citus, "CONN_MAX_AGE": None}
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connections

    from bench import data
    from cobee_django.state import Tenant, for_company, for_tenant
    from cobee_django.testing import TokenIssuer, install_key_set
    from testproject.api.models import Employee

    if not args.no_environment:
        print_environment()
    for size in sizes:
        alias = f"citus_{size}"
        check_cluster(alias)
        with connections[alias].cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema(size, args.shard_count)}")
        call_command("migrate", database=alias, verbosity=0, interactive=False)
        distribute(alias, args.shard_count)
        for side in ("plain", "citus"):
            started = time.monotonic()
            if data.prepare(f"{side}_{size}", max(1, size // PER_COMPANY), PER_COMPANY):
                print(f"  generated {size:,} rows ({side}) in {time.monotonic() - started:.1f} s", flush=True)

    company = data.company_id(0)
    corporation_ids = frozenset(data.company_id(n) for n in range(1, data.CORPORATION_SIZE + 1))
    corporation = Tenant(corporation_ids, data.CORPORATION_ID)
    issuer = TokenIssuer(issuer=settings.ISSUER, audience=settings.AUDIENCE)
    install_key_set(issuer.issuer, issuer.jwks())
    company_bearer = f"Bearer {issuer.make_token(company, scopes=['read:employees'])}"
    corporation_bearer = "Bearer " + issuer.make_token(
        data.company_id(1), data.CORPORATION_ID, scopes=["read:employees"]
    )
    handler = WSGIHandler()
    statuses: set[str] = set()

    @contextmanager
    def serving(alias: str) -> Iterator[None]:
        """The request's ``default`` database is ``alias`` (the handler runs in this thread)."""
        original = connections["default"]
        connections["default"] = connections[alias]
        try:
            yield
        finally:
            connections["default"] = original

    def request(path: str, authorization: str) -> bytes:
        env: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": f"pageSize={PAGE_SIZE}",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT": "application/json",
            "HTTP_AUTHORIZATION": authorization,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        response = handler(env, lambda status, headers, exc_info=None: statuses.add(status))
        try:
            return b"".join(response)
        finally:
            response.close()

    def timed(run: Callable[[], object]) -> Callable[[], float]:
        def measure() -> float:
            start = time.perf_counter()
            for _ in range(args.repeat):
                run()
            return (time.perf_counter() - start) / args.repeat

        return measure

    def measures(alias: str) -> dict[str, Callable[[], float]]:
        employees = Employee.objects.using(alias)

        def company_list() -> object:
            with for_company(company):
                return list(employees.all())

        def corporation_page() -> object:
            with for_tenant(corporation):
                return list(employees.all()[:PAGE_SIZE])

        def company_request() -> object:
            with serving(alias):
                return request(f"/api/v3/companies/{company}/employees", company_bearer)

        def corporation_request() -> object:
            with serving(alias):
                return request("/api/v3/employees", corporation_bearer)

        return {
            "company list": timed(company_list),
            "corporation first page": timed(corporation_page),
            "company request": timed(company_request),
            "corporation request": timed(corporation_request),
        }

    targets = {"company list": 1.3, "corporation first page": 2.0, "company request": 1.3, "corporation request": 2.0}
    table: dict[str, Callable[[], float]] = {}
    for size in sizes:
        for side in ("plain", "citus"):
            alias = f"{side}_{size}"
            connections[alias].ensure_connection()
            for name, measure in measures(alias).items():
                measure()  # warm: the first request verifies the token and records its membership
                table[f"{size} {side} {name}"] = measure
        # The same answers on both sides, or the comparison means nothing.
        with serving(f"plain_{size}"):
            plain_answer = request(f"/api/v3/companies/{company}/employees", company_bearer)
        with serving(f"citus_{size}"):
            citus_answer = request(f"/api/v3/companies/{company}/employees", company_bearer)
        if plain_answer != citus_answer:
            raise SystemExit(f"bench citus: the two databases answer differently at {size:,} rows")
    if statuses != {"200 OK"}:
        raise SystemExit(f"bench citus: unexpected statuses {sorted(statuses)}")
    print(f"citus: {len(table)} measures interleaved, {args.rounds} rounds of {args.repeat} each", flush=True)
    results = interleave(table, args.rounds)

    for size in sizes:
        for name, target in targets.items():
            outcome = ratio(results[f"{size} citus {name}"], results[f"{size} plain {name}"])
            report(f"citus {size} {name}, Citus / plain PostgreSQL", outcome, unit="ms", target=target, scale=1e3)
    for size in sizes:
        with connections[f"citus_{size}"].cursor() as cursor:
            cursor.execute("EXPLAIN SELECT * FROM api_employee WHERE company_id = %s", [company])
            plan = "\n".join(str(row[0]) for row in cursor.fetchall())
            cursor.execute("SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'api_employee'::regclass")
            shards = cursor.fetchone()[0]
        tasks = plan.split("Task Count: ", 1)[1].split()[0] if "Task Count: " in plan else "?"
        figure(f"citus {size} one company's shards", f"Task Count: {tasks} of {shards} shards (target 1)")
    if len(sizes) > 1:
        smallest, largest = sizes[0], sizes[-1]
        for name in targets:
            growth = ratio(results[f"{largest} citus {name}"], results[f"{smallest} citus {name}"])
            report(
                f"citus growth {name}, {largest} rows / {smallest} rows (table {largest // smallest}x)",
                growth,
                unit="ms",
                scale=1e3,
            )


if __name__ == "__main__":
    main()
