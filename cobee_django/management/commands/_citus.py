"""What the Citus shard commands share: the database option, the refusal on other databases, the report."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from ...db.shards import Counts
from ...exceptions import ShardOperationError

__all__: list[str] = []


class ShardCommand(BaseCommand):
    """A command that runs counted shard operations on a Citus coordinator (see :mod:`cobee_django.db.shards`)."""

    #: Whether the command offers ``--lift-force`` (the operations that copy shards do).
    lifts_force = True

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="The Citus coordinator's database alias (default: default)."
        )
        if self.lifts_force:
            parser.add_argument(
                "--lift-force",
                action="store_true",
                help="As the tables' owner: lift FORCE ROW LEVEL SECURITY for exactly the operation (the runtime "
                "role stays held by the policies) and restore it afterwards, whatever happens.",
            )

    def citus_connection(self, options: dict[str, Any]) -> BaseDatabaseWrapper:
        from ...db._catalog import is_citus

        connection = connections[options["database"]]
        if connection.vendor != "postgresql" or not is_citus(connection):
            raise CommandError(f"The database {options['database']!r} is not a Citus coordinator.")
        return connection

    def report(self, what: str, before: Counts, after: Counts) -> None:
        self.stdout.write(f"{what}: rows before: {before.describe()}")
        self.stdout.write(f"{what}: rows after:  {after.describe()}")
        self.stdout.write(self.style.SUCCESS(f"{what}: every row kept."))

    def fail(self, error: ShardOperationError) -> CommandError:
        return CommandError(str(error))
