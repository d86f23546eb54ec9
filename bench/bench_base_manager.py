"""What a scoped base manager costs Django's own paths: save(), refresh_from_db() and delete().

    python -m bench.bench_base_manager [--operations 200] [--rounds 15]

Tenant models get a scoped ``_base_manager`` (see docs/tenancy.md). The baseline is the same
model, in the same process and rounds, with Django's plain base manager put back for the
duration of its measures (what the package did before). Both sides bind the same company and run
the same operations on the test app's tables (and, for a figure the machine's load cannot blur,
the Python function calls of one operation on each side): ``save()`` of a loaded employee (an UPDATE through
the base manager), ``refresh_from_db()`` (a SELECT through it), and ``delete()`` of an employee
with a badge and a note (the collector's lookups through it, then the DELETEs; the rows are made
again outside the timed part). Uses ``BENCH_DATABASE_URL`` (default: the local ``cobee_bench``).

No target: the figures are documented in docs/tenancy.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import dj_database_url

from bench.common import database_url, figure, interleave, print_environment, ratio, report
from bench.data import ensure_database


def python_calls(run: Callable[[], Any]) -> int:
    """How many Python function calls ``run()`` makes: a cost figure the machine's load cannot blur."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=200, help="operations per measure and round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-environment", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_environment:
        print_environment()

    url = database_url()
    if url.startswith("postgres"):
        ensure_database(dj_database_url.parse(url))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import Manager, Model
    from django.test.utils import override_settings

    from cobee_django.models import Company
    from cobee_django.state import for_company, unscoped
    from tests.testapp.models import Badge, Department, Employee, Lead, Note, Project

    call_command("migrate", verbosity=0)
    models: list[type[Model]] = [Employee, Badge, Department, Lead, Project]

    @contextmanager
    def base_managers(scoped: bool) -> Iterator[None]:
        """The package's scoped base managers, or Django's plain ones for the baseline."""
        if scoped:
            yield
            return
        for model in models:
            plain: Manager[Any] = Manager()
            plain.name, plain.model, plain.auto_created = "_base_manager", model, True
            model._meta.__dict__["base_manager"] = plain
        try:
            yield
        finally:
            for model in models:
                model._meta.__dict__.pop("base_manager", None)

    company = uuid.uuid4()
    Company.objects.create(id=company, name="bench base manager")
    with for_company(company):
        department = Department.objects.create(name="bench")
        employees = [Employee.objects.create(email=f"{n}@bench", department=department) for n in range(args.operations)]

    def measure(operation: Callable[[Any], Any], scoped: bool, prepare: Callable[[], list[Any]]) -> Callable[[], float]:
        def one_round() -> float:
            """Seconds per operation over one round."""
            with for_company(company):
                objs = prepare()
                with base_managers(scoped):
                    start = time.perf_counter()
                    for obj in objs:
                        operation(obj)
                    return (time.perf_counter() - start) / len(objs)

        return one_round

    def loaded() -> list[Any]:
        return list(Employee.objects.filter(pk__in=[e.pk for e in employees]))

    def doomed() -> list[Any]:
        made = [Employee.objects.create(email=f"{uuid.uuid4()}@bench") for _ in range(args.operations)]
        Badge.objects.bulk_create([Badge(employee=e, code="b") for e in made])
        Note.objects.bulk_create([Note(employee=e, text="n") for e in made])
        return made

    def save(obj: Any) -> None:
        obj.salary += 1
        obj.save()

    operations: list[tuple[str, Callable[[Any], Any], Callable[[], list[Any]]]] = [
        ("save()", save, loaded),
        ("refresh_from_db()", lambda obj: obj.refresh_from_db(), loaded),
        ("delete() with a cascade", lambda obj: obj.delete(), doomed),
    ]
    try:
        with override_settings(DEBUG=False):
            for label, operation, prepare in operations:
                results = interleave(
                    {
                        "plain": measure(operation, False, prepare),
                        "scoped": measure(operation, True, prepare),
                    },
                    args.rounds,
                )
                result = ratio(results["scoped"], results["plain"])
                report(f"scoped base manager, {label} / plain", result, unit="us per operation", scale=1e6)
                counted = {}
                for scoped in (False, True):
                    with for_company(company):
                        obj = prepare()[0]
                        with base_managers(scoped):
                            counted[scoped] = python_calls(partial(operation, obj))
                figure(
                    f"scoped base manager, {label}, Python calls",
                    f"{counted[True]:,} scoped vs {counted[False]:,} plain ({counted[True] / counted[False]:.3f}x)",
                )
    finally:
        with unscoped():
            Note.objects.filter(employee__company_id=company).delete()
            Employee.objects.filter(company_id=company).delete()
            Department.objects.filter(company_id=company).delete()
            Company.objects.filter(id=company).delete()  # the collector looks for its tenant rows


if __name__ == "__main__":
    main()
