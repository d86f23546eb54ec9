"""Scoped queries at data scale on PostgreSQL, against hand-written filters, at three table sizes.

    python -m bench.bench_scale [--sizes 100000,300000,1000000] [--per-company 100] [--rounds 30]

For each size a database ``<bench database>_<size>`` is created and filled once (``generate_series``
on the server; about a minute for a million rows) and reused afterwards. Every company has
``--per-company`` employees, so the table grows by adding companies (10,000 for a million rows),
and companies 1-50 form one corporation.

Measures, interleaved in rounds (wall clock: the database's time is the point):

- scoped count / list for one company, ``Employee.objects`` under ``for_company()``, against
  ``QuerySet(model=Employee).filter(company_id=...)``;
- the same for a corporation's 50 companies (``for_tenant()`` with the 50 ids) against a
  hand-written ``company_id IN (...)``;
- the query plan of the scoped list (``EXPLAIN``): which index it uses.

Targets: one company <= 1.05x the hand-written filter, 50 companies <= 1.1x, plans use the
company index, and the cost stays flat across table sizes (it follows the tenant's rows).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable
from typing import Any

from bench.common import database_url, interleave, print_environment, ratio, report


def build_measures(
    scoped: Any, plain: Any, company: Any, corporation: Any, corporation_ids: list[Any], repeat: int
) -> dict[str, Callable[[], float]]:
    """The eight interleaved measures for one table: scoped queries and their hand-written twins."""
    from cobee_django.state import for_company, for_tenant

    def timed(run: Callable[[], object]) -> float:
        start = time.perf_counter()
        for _ in range(repeat):
            run()
        return (time.perf_counter() - start) / repeat

    def in_company(query: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with for_company(company):
                return query()

        return run

    def in_corporation(query: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with for_tenant(corporation):
                return query()

        return run

    return {
        "company count": lambda: timed(in_company(lambda: scoped.count())),
        "company count baseline": lambda: timed(lambda: plain.filter(company_id=company).count()),
        "company list": lambda: timed(in_company(lambda: list(scoped.all()))),
        "company list baseline": lambda: timed(lambda: list(plain.filter(company_id=company))),
        "corporation count": lambda: timed(in_corporation(lambda: scoped.count())),
        "corporation count baseline": lambda: timed(lambda: plain.filter(company_id__in=corporation_ids).count()),
        "corporation list": lambda: timed(in_corporation(lambda: list(scoped.all()[:100]))),
        "corporation list baseline": lambda: timed(lambda: list(plain.filter(company_id__in=corporation_ids)[:100])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000", help="employees per table, comma-separated")
    parser.add_argument("--per-company", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=20, help="queries per measure per round")
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import dj_database_url
    from django.conf import settings

    # One database alias per table size, added before Django opens any connection.
    base = database_url()
    for size in sizes:
        settings.DATABASES[f"scale_{size}"] = {
            **dj_database_url.parse(f"{base}_{size}"),
            "CONN_MAX_AGE": None,
        }
    import django

    django.setup()
    from django.db import connections
    from django.db.models import QuerySet

    from bench import data
    from cobee_django.state import Tenant, for_company, for_tenant
    from testproject.api.models import Employee

    if not args.no_environment:
        print_environment()
    for size in sizes:
        companies = max(1, size // args.per_company)
        started = time.monotonic()
        if data.prepare(f"scale_{size}", companies, args.per_company):
            print(f"  generated {size:,} rows in {time.monotonic() - started:.1f} s", flush=True)

    company = data.company_id(0)
    corporation_ids = [data.company_id(n) for n in range(1, data.CORPORATION_SIZE + 1)]
    corporation = Tenant(frozenset(corporation_ids), data.CORPORATION_ID)
    repeat = args.repeat
    targets = {"company count": 1.05, "company list": 1.05, "corporation count": 1.1, "corporation list": 1.1}

    # Every size's measures in the same rounds, so the growth across sizes is a fair ratio too.
    measures: dict[str, Callable[[], float]] = {}
    for size in sizes:
        alias = f"scale_{size}"
        connections[alias].ensure_connection()
        present = min(data.CORPORATION_SIZE, max(0, size // args.per_company - 1))
        print(
            f"scale: {size:,} employees in {max(1, size // args.per_company):,} companies; one company "
            f"{args.per_company} rows, the corporation {present} companies",
            flush=True,
        )
        table = build_measures(
            Employee.objects.using(alias),
            QuerySet(model=Employee).using(alias),
            company,
            corporation,
            corporation_ids,
            repeat,
        )
        measures.update({f"{size} {name}": measure for name, measure in table.items()})
    print(f"scale: {len(measures)} measures interleaved, {args.rounds} rounds of {repeat} queries each", flush=True)
    results = interleave(measures, args.rounds)

    for size in sizes:
        for name, target in targets.items():
            outcome = ratio(results[f"{size} {name}"], results[f"{size} {name} baseline"])
            report(f"scale {size} {name}, scoped / hand-written", outcome, unit="ms", target=target, scale=1e3)
    for size in sizes:
        scoped = Employee.objects.using(f"scale_{size}")
        with for_company(company):
            plan = scoped.all().explain()
            work = buffers(scoped.all())
        with for_tenant(corporation):
            corporation_plan = scoped.all()[:100].explain()
            corporation_work = buffers(scoped.all())
        for label, text, blocks in (("one company", plan, work), ("corporation", corporation_plan, corporation_work)):
            indexes = sorted(set(re.findall(r"(?:Index|Index Only) Scan (?:Backward )?using (\S+)", text)))
            indexes += sorted(set(re.findall(r"Bitmap Index Scan on (\S+)", text)))
            company_indexes = [name for name in indexes if "company" in name]
            verdict = "met" if company_indexes else "MISSED"
            print(
                f"FIGURE scale {size} plan, {label}: {'; '.join(indexes) or 'no index'}"
                f" (sequential scan: {'Seq Scan' in text}); all its rows read {blocks} blocks;"
                f" target a company index: {verdict}",
                flush=True,
            )

    if len(sizes) > 1:
        smallest, largest = sizes[0], sizes[-1]
        for name in targets:
            growth = ratio(results[f"{largest} {name}"], results[f"{smallest} {name}"])
            report(
                f"scale growth {name}, {largest} rows / {smallest} rows (table {largest // smallest}x)",
                growth,
                unit="ms",
                scale=1e3,
            )


def buffers(queryset: Any) -> int:
    """Database blocks touched to run ``queryset`` (EXPLAIN ANALYZE BUFFERS): its work, free of timing noise."""
    import json

    plan = json.loads(queryset.explain(analyze=True, buffers=True, format="json"))
    node = plan[0]["Plan"]
    return int(node.get("Shared Hit Blocks", 0)) + int(node.get("Shared Read Blocks", 0))


if __name__ == "__main__":
    main()
