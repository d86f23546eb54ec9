"""``manage.py citus_rebalance``: make the moves Citus's rebalancer plans, one counted move at a time."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from ...db.shards import move_shard, rebalance_plan, shard_node
from ...exceptions import ShardOperationError
from ._citus import ShardCommand

__all__: list[str] = []


class Command(ShardCommand):
    help = (
        "Rebalance the shards over the nodes: the moves of Citus's get_rebalance_table_shards_plan(), each "
        "run like citus_move_shard (counted before and after, rolled back and stopped on a difference). "
        "Use it instead of citus_rebalance_start(), whose background moves are not counted."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Print the planned moves and make none.")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        connection = self.citus_connection(options)
        plan = rebalance_plan(connection)
        if not plan:
            self.stdout.write("The shards are balanced: nothing to move.")
            return
        for move in plan:
            if options["dry_run"]:
                self.stdout.write(f"Would move {move}.")
                continue
            if shard_node(connection, move.shard) == move.target:
                continue  # moved already, with a shard co-located with it
            try:
                before, after = move_shard(connection, move.shard, move.target, lift=options["lift_force"])
            except ShardOperationError as error:
                raise self.fail(error) from error
            self.report(f"Moved {move}", before, after)
