"""``manage.py citus_isolate_company UUID``: give one company a shard of its own, every row counted."""

from __future__ import annotations

import uuid
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from ...db.shards import isolate_company
from ...exceptions import ShardOperationError
from ._citus import ShardCommand

__all__: list[str] = []


class Command(ShardCommand):
    help = (
        "Isolate a company on a shard of its own in every co-located tenant table (Citus "
        "isolate_tenant_to_new_shard, CASCADE), counting every table's rows and the company's before and after: "
        "a difference rolls it back and fails. Writes to the tenant tables wait while it runs; reads go on."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("company", help="The company's id (uuid).")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            company = str(uuid.UUID(options["company"]))
        except ValueError:
            raise CommandError(f"{options['company']!r} is not a company id (a uuid).") from None
        connection = self.citus_connection(options)
        try:
            before, after = isolate_company(connection, company, lift=options["lift_force"])
        except ShardOperationError as error:
            raise self.fail(error) from error
        self.report(f"Company {company} isolated", before, after)
