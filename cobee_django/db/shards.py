"""Citus shard operations that cannot lose rows: isolate a company, move a shard, rebalance.

Citus copies a shard's rows as the role that calls the operation. A role held by row-level
security (the tables' owner once ``FORCE ROW LEVEL SECURITY`` is on, as
:class:`~cobee_django.db.operations.EnableRowLevelSecurity` leaves it) sees none of them, so
``isolate_tenant_to_new_shard`` or ``citus_move_shard_placement`` run as that role copy nothing and
drop the old shard: the company's rows are gone. Every operation here therefore:

1. refuses a role that would lose rows (:func:`row_loss_hazards`), unless told to lift ``FORCE``
   for exactly the operation (``lift_force``), which holds only the owner (the runtime role stays
   held by the policies) and is restored in a ``finally``, checked afterwards;
2. runs in one coordinator transaction that first locks every co-located table in ``EXCLUSIVE``
   mode (concurrent writes wait, reads go on), counts every co-located table's rows (and the
   company's, for an isolation), runs the operation with ``shard_transfer_mode => 'block_writes'``,
   counts again in the same transaction, and commits only when every count is unchanged: any
   difference rolls the operation back (Citus undoes the new placements) and raises
   :class:`ShardOperationError`.

The management commands ``citus_isolate_company``, ``citus_move_shard`` and ``citus_rebalance``
call these functions; ``citus_convert`` uses the same counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..conf import Problem
from ..exceptions import ShardOperationError

__all__: list[str] = []

logger = logging.getLogger("cobee_django.citus")

#: How long the operation waits for the co-located tables' write lock before giving up.
LOCK_TIMEOUT = "30s"


def _fetch(connection: BaseDatabaseWrapper, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    # The raw DB-API cursor: these statements are maintenance, not the application's scoped queries.
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall()) if cursor.description else []


def psycopg_error(connection: BaseDatabaseWrapper) -> type[Exception]:
    """The driver's base error class (what a raw cursor raises)."""
    error: type[Exception] = connection.Database.Error  # type: ignore[attr-defined]
    return error


def anchor_table(connection: BaseDatabaseWrapper) -> str:
    """The first distributed tenant table: the co-location group of every tenant table."""
    from .citus import _tenant_tables

    tables = sorted(_tenant_tables())
    rows = _fetch(
        connection,
        "SELECT p.logicalrelid::regclass::text FROM pg_dist_partition p WHERE p.partmethod = 'h' "
        "AND p.logicalrelid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t) "
        "ORDER BY p.colocationid, p.logicalrelid LIMIT 1",
        [[connection.ops.quote_name(t) for t in tables]],
    )
    if not rows:
        raise ShardOperationError("No tenant table is distributed on this database: there are no shards to operate on.")
    return str(rows[0][0])


def colocated_tables(connection: BaseDatabaseWrapper, table: str) -> list[str]:
    """Every distributed table co-located with ``table`` (itself included), as ``regclass`` text."""
    rows = _fetch(
        connection,
        "SELECT p.logicalrelid::regclass::text FROM pg_dist_partition p WHERE p.colocationid = "
        "(SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = to_regclass(%s)) ORDER BY 1",
        [table],
    )
    if not rows:
        raise ShardOperationError(f"{table} is not a distributed table.")
    return [str(row[0]) for row in rows]


def forced(connection: BaseDatabaseWrapper, tables: list[str]) -> list[str]:
    """Those of ``tables`` with row-level security enabled and forced."""
    rows = _fetch(
        connection,
        "SELECT t FROM unnest(%s::text[]) t JOIN pg_class c ON c.oid = to_regclass(t) "
        "WHERE c.relrowsecurity AND c.relforcerowsecurity ORDER BY t",
        [tables],
    )
    return [str(row[0]) for row in rows]


def row_loss_hazards(connection: BaseDatabaseWrapper, tables: list[str], *, force_lifted: bool = False) -> list[str]:
    """Tables whose rows the connected role cannot see all of (so Citus would copy too few of them).

    A superuser or a ``BYPASSRLS`` role sees every row. Another role is held by a table's
    row-level security when it does not own the table, or owns it and ``FORCE`` is on
    (``force_lifted``: as it will be during the operation).
    """
    # Threat: Citus copies shards as this role; any row it cannot see is silently left behind.
    rows = _fetch(
        connection,
        "SELECT t FROM unnest(%s::text[]) t JOIN pg_class c ON c.oid = to_regclass(t) "
        "WHERE c.relrowsecurity AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) "
        "AND (NOT pg_has_role(current_user, c.relowner, 'USAGE') OR (c.relforcerowsecurity AND NOT %s)) ORDER BY t",
        [tables, force_lifted],
    )
    return [str(row[0]) for row in rows]


@dataclass(frozen=True)
class Counts:
    """Rows per table (and of one company per table, when an operation concerns one)."""

    total: dict[str, int]
    company: dict[str, int] = field(default_factory=dict)

    def differences(self, after: Counts) -> list[str]:
        """What changed from these counts to ``after``, one line per table and figure."""
        lines = [
            f"{table}: {count} rows before, {after.total.get(table)} after"
            for table, count in self.total.items()
            if after.total.get(table) != count
        ]
        lines += [
            f"{table}: {count} rows of the company before, {after.company.get(table)} after"
            for table, count in self.company.items()
            if after.company.get(table) != count
        ]
        return lines

    def describe(self) -> str:
        parts = []
        for table, count in self.total.items():
            extra = f" ({self.company[table]} of the company)" if table in self.company else ""
            parts.append(f"{table}={count}{extra}")
        return ", ".join(parts)


def count_rows(connection: BaseDatabaseWrapper, tables: list[str], *, company: str | None = None) -> Counts:
    """Count every row of ``tables`` (and ``company``'s, by each table's distribution column).

    Counted as the connected role sees them: run by the operations only after
    :func:`row_loss_hazards` found that role able to see every row.
    """
    quote = connection.ops.quote_name
    total, of_company = {}, {}
    # The table names are regclass text from Citus's catalog (quoted by PostgreSQL where needed).
    for table in tables:
        if company is None:
            (count,) = _fetch(connection, f"SELECT count(*) FROM {table}")[0]  # noqa: S608
            total[table] = int(count)
            continue
        column = _fetch(
            connection,
            "SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition "
            "WHERE logicalrelid = %s::regclass",
            [table],
        )[0][0]
        count, mine = _fetch(
            connection,
            f"SELECT count(*), count(*) FILTER (WHERE {quote(column)} = %s::uuid) FROM {table}",  # noqa: S608
            [company],
        )[0]
        total[table], of_company[table] = int(count), int(mine)
    return Counts(total, of_company)


def _lock_for_alter(connection: BaseDatabaseWrapper, tables: list[str]) -> None:
    """Take every table's lock on the coordinator first, all at once, before altering them one by one.

    Writers queue on the coordinator's lock instead of holding shard locks on the workers that the
    ALTER TABLEs then wait for (Citus cancelled such writers as a distributed deadlock).
    """
    if tables:
        _fetch(connection, "SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
        _fetch(connection, f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")


@contextmanager
def lift_force(connection: BaseDatabaseWrapper, tables: list[str]) -> Iterator[list[str]]:
    """Lift ``FORCE ROW LEVEL SECURITY`` from those of ``tables`` that have it, and put it back afterwards.

    Only the tables' owner is affected: every other role stays held by the policies (they apply
    to non-owners whether forced or not). Restored in a ``finally`` (an error, Ctrl-C), then checked;
    a process killed in between leaves ``FORCE`` off, which ``check --deploy`` reports (E023).
    """
    lifted = forced(connection, tables)
    with transaction.atomic(using=connection.alias):
        _lock_for_alter(connection, lifted)
        for table in lifted:
            _fetch(connection, f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    if lifted:
        logger.warning("FORCE ROW LEVEL SECURITY lifted for a shard operation on %s.", ", ".join(lifted))
    try:
        yield lifted
    finally:
        with transaction.atomic(using=connection.alias):
            _lock_for_alter(connection, lifted)
            for table in lifted:
                _fetch(connection, f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        missing = sorted(set(lifted) - set(forced(connection, lifted)))
        if missing:
            raise ShardOperationError(
                f"FORCE ROW LEVEL SECURITY could not be restored on {', '.join(missing)}: run "
                + "; ".join(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY" for t in missing)
            )
        if lifted:
            logger.warning("FORCE ROW LEVEL SECURITY restored on %s.", ", ".join(lifted))


def _counted(
    connection: BaseDatabaseWrapper,
    tables: list[str],
    operation: Callable[[], object],
    *,
    company: str | None = None,
    lift: bool = False,
) -> tuple[Counts, Counts]:
    """Run ``operation`` between two counts in one transaction, holding the tables' write lock."""
    if connection.in_atomic_block:
        raise ShardOperationError("Shard operations run in transactions of their own: call them outside atomic().")
    hazards = row_loss_hazards(connection, tables, force_lifted=lift)
    if hazards:
        user = _fetch(connection, "SELECT current_user")[0][0]
        if row_loss_hazards(connection, hazards, force_lifted=True):
            hint = "Run it as a superuser or a role with BYPASSRLS."
        else:
            hint = (
                "Run it as a superuser or a role with BYPASSRLS, or, as the tables' owner, with --lift-force "
                "(FORCE ROW LEVEL SECURITY lifted for exactly the operation and restored afterwards)."
            )
        raise ShardOperationError(
            f"Refused: row-level security hides rows of {', '.join(hazards)} from the role {user!r}, and Citus "
            f"copies shards as the calling role: the hidden rows would be lost. {hint}"
        )

    def run() -> tuple[Counts, Counts]:
        with transaction.atomic(using=connection.alias):
            _fetch(connection, "SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
            # A maintenance operation runs to its end: a serving role's statement_timeout would cut it.
            _fetch(connection, "SELECT set_config('statement_timeout', '0', true)")
            # Threat: a write between the counts would hide (or fake) a lost row; writers wait instead.
            _fetch(connection, f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
            before = count_rows(connection, tables, company=company)
            try:
                operation()
            except psycopg_error(connection) as error:  # the DB-API's errors: a raw cursor
                raise ShardOperationError(f"Citus refused the operation (nothing changed): {error}") from error
            after = count_rows(connection, tables, company=company)
            changed = before.differences(after)
            if changed:
                transaction.set_rollback(True, using=connection.alias)
                raise ShardOperationError(
                    "Rolled back: the row counts changed during the shard operation (" + "; ".join(changed) + ")."
                )
            return before, after

    if not lift:
        return run()
    with lift_force(connection, tables):
        return run()


def isolate_company(connection: BaseDatabaseWrapper, company: str, *, lift: bool = False) -> tuple[Counts, Counts]:
    """Give ``company`` a shard of its own in every co-located tenant table (``isolate_tenant_to_new_shard``)."""
    anchor = anchor_table(connection)
    tables = colocated_tables(connection, anchor)
    return _counted(
        connection,
        tables,
        lambda: _fetch(
            connection,
            "SELECT isolate_tenant_to_new_shard(%s, %s::uuid, 'CASCADE', shard_transfer_mode => 'block_writes')",
            [anchor, company],
        ),
        company=company,
        lift=lift,
    )


@dataclass(frozen=True)
class Move:
    """One shard (with its co-located shards) from one node to another."""

    shard: int
    source: tuple[str, int]
    target: tuple[str, int]

    def __str__(self) -> str:
        return f"shard {self.shard} from {self.source[0]}:{self.source[1]} to {self.target[0]}:{self.target[1]}"


def _shard_table(connection: BaseDatabaseWrapper, shard: int) -> str:
    rows = _fetch(connection, "SELECT logicalrelid::regclass::text FROM pg_dist_shard WHERE shardid = %s", [shard])
    if not rows:
        raise ShardOperationError(f"There is no shard {shard}.")
    return str(rows[0][0])


def shard_node(connection: BaseDatabaseWrapper, shard: int) -> tuple[str, int]:
    """Where ``shard``'s placement is."""
    rows = _fetch(
        connection,
        "SELECT n.nodename, n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid "
        "WHERE p.shardid = %s AND n.noderole = 'primary' ORDER BY n.nodeid LIMIT 1",
        [shard],
    )
    if not rows:
        raise ShardOperationError(f"Shard {shard} has no placement.")
    return str(rows[0][0]), int(rows[0][1])


def move_shard(
    connection: BaseDatabaseWrapper, shard: int, target: tuple[str, int], *, lift: bool = False
) -> tuple[Counts, Counts]:
    """Move ``shard`` (and its co-located shards) to ``target`` (``citus_move_shard_placement``)."""
    tables = colocated_tables(connection, _shard_table(connection, shard))
    source = shard_node(connection, shard)
    if source == target:
        raise ShardOperationError(f"Shard {shard} is already on {target[0]}:{target[1]}.")
    if not _fetch(
        connection,
        "SELECT 1 FROM pg_dist_node WHERE nodename = %s AND nodeport = %s AND isactive AND noderole = 'primary'",
        [target[0], target[1]],
    ):
        raise ShardOperationError(f"{target[0]}:{target[1]} is not an active node of this database (pg_dist_node).")
    return _counted(
        connection,
        tables,
        lambda: _fetch(
            connection,
            "SELECT citus_move_shard_placement(%s, %s, %s, %s, %s, shard_transfer_mode => 'block_writes')",
            [shard, source[0], source[1], target[0], target[1]],
        ),
        lift=lift,
    )


def rebalance_plan(connection: BaseDatabaseWrapper) -> list[Move]:
    """The moves Citus's rebalancer would make now (``get_rebalance_table_shards_plan``)."""
    rows = _fetch(
        connection,
        "SELECT shardid, sourcename, sourceport, targetname, targetport FROM get_rebalance_table_shards_plan()",
    )
    return [Move(int(s), (str(sn), int(sp)), (str(tn), int(tp))) for s, sn, sp, tn, tp in rows]


# The tenant tables (distributed, row-level security on) whose rows a role cannot all see.
_HELD = (
    "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_dist_partition p ON p.logicalrelid = c.oid, "
    "(SELECT %s::regrole::oid AS oid) who WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t) "
    "AND c.relrowsecurity AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE oid = who.oid) "
    "AND (NOT pg_has_role(who.oid, c.relowner, 'USAGE') OR c.relforcerowsecurity) ORDER BY 1"
)


def shard_operation_problems(connection: BaseDatabaseWrapper, tables: list[str]) -> list[Problem]:
    """Where a shard operation on these tenant tables would lose rows (W042), or is about to (E042)."""
    quote = connection.ops.quote_name
    names = [quote(t) for t in tables]
    problems = []
    owners = _fetch(
        connection,
        "SELECT r.rolname, array_agg(c.oid::regclass::text ORDER BY c.oid::regclass::text) FROM pg_class c "
        "JOIN pg_dist_partition p ON p.logicalrelid = c.oid JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t) AND c.relrowsecurity "
        "AND c.relforcerowsecurity AND NOT (r.rolsuper OR r.rolbypassrls) GROUP BY r.rolname ORDER BY 1",
        [names],
    )
    for owner, owned in owners:
        problems.append(
            Problem(
                "cobee_django.W042",
                f"Row-level security is forced on {', '.join(owned)}, owned by {owner!r}: Citus copies shards as the "
                "calling role, so isolate_tenant_to_new_shard(), citus_move_shard_placement() or a rebalance run as "
                f"{owner!r} copies none of their rows and drops the old shards.",
                "Isolate, move and rebalance with manage.py citus_isolate_company, citus_move_shard and "
                "citus_rebalance: they refuse such a role (or lift FORCE for exactly the operation with "
                "--lift-force) and count every row before and after.",
            )
        )
    tasks = _fetch(
        connection,
        "SELECT t.job_id, t.owner::text FROM pg_dist_background_task t "
        "WHERE t.status IN ('blocked', 'runnable', 'running') ORDER BY 1",
    )
    for job, owner in sorted(set(tasks)):
        held = _fetch(connection, _HELD, [owner, names])
        if held:
            problems.append(
                Problem(
                    "cobee_django.E042",
                    f"The Citus background job {job} (a rebalance or shard move) runs as {owner!r}, which row-level "
                    f"security holds on {', '.join(r[0] for r in held)}: its shard copies will lose their rows.",
                    f"Cancel it (SELECT citus_job_cancel({job})) and rebalance with manage.py citus_rebalance.",
                )
            )
    return problems
