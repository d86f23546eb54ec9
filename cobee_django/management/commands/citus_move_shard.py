"""``manage.py citus_move_shard SHARD HOST:PORT``: move a shard (and its co-located shards), every row counted."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from ...db.shards import move_shard
from ...exceptions import ShardOperationError
from ._citus import ShardCommand

__all__: list[str] = []


def node(value: str) -> tuple[str, int]:
    """``host:port`` as a pair."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise CommandError(f"{value!r} is not a node (host:port).")
    return host, int(port)


class Command(ShardCommand):
    help = (
        "Move a shard and its co-located shards to another node (Citus citus_move_shard_placement), counting "
        "every co-located table's rows before and after: a difference rolls it back and fails. Writes to the "
        "tenant tables wait while it runs; reads go on."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("shard", type=int, help="The shard id (pg_dist_shard.shardid, citus_shards.shardid).")
        parser.add_argument("target", help="The node to move it to, as host:port (as pg_dist_node names it).")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        target = node(options["target"])
        connection = self.citus_connection(options)
        try:
            before, after = move_shard(connection, options["shard"], target, lift=options["lift_force"])
        except ShardOperationError as error:
            raise self.fail(error) from error
        self.report(f"Shard {options['shard']} moved to {target[0]}:{target[1]}", before, after)
