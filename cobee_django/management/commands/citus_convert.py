"""``manage.py citus_convert``: distribute a database copied from plain PostgreSQL onto Citus, every row counted."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from ...db.convert import convert
from ...exceptions import CitusError

__all__: list[str] = []


class Command(BaseCommand):
    help = (
        "Convert a database copied from plain PostgreSQL onto a Citus coordinator: run the applied migrations' "
        "DistributeTenantModel and CreateReferenceTable operations again, in one transaction, keeping the "
        "row-level security policies (rewritten in the form Citus accepts) and counting every table's rows "
        "and each company's before and after. Any difference, or a tenant table left local, rolls it all back."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="The Citus coordinator's database alias (default: default)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError(f"The database {options['database']!r} is not PostgreSQL.")
        try:
            done = convert(connection, say=self.stdout.write)
        except CitusError as error:
            raise CommandError(str(error)) from error
        rows = ", ".join(f"{table}={count}" for table, count in done.rows.items())
        self.stdout.write(f"Rows before and after: {rows} ({done.companies} companies, each counted per table).")
        ran = len(done.operations)
        self.stdout.write(self.style.SUCCESS(f"Converted: {ran} Citus operations run, every row kept."))
