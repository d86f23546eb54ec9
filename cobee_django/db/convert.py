"""Convert a database copied from plain PostgreSQL onto Citus: distribute what its migrations say, every row kept.

A project that ran its migrations on plain PostgreSQL has the distribution migrations recorded as
applied, though :class:`~cobee_django.db.citus.DistributeTenantModel` and
:class:`~cobee_django.db.citus.CreateReferenceTable` did nothing there. Copied onto a Citus
coordinator, ``migrate`` has nothing left to apply and check ``E041`` refuses it. :func:`convert`
runs those operations again, in migration order, on the live database:

- in one transaction that first locks the tenant and registry tables in ``EXCLUSIVE`` mode (writes
  wait, reads go on), so a failure leaves the database as it was;
- policies written on plain PostgreSQL (a subquery, which Citus refuses) are rewritten in the form
  Citus accepts, and ``FORCE ROW LEVEL SECURITY`` is lifted only for each table's copy (both by
  ``DistributeTenantModel`` itself), so the policies and every row survive;
- every table's rows, and each company's in every tenant table, are counted before and after; any
  difference, or a tenant table still local afterwards (``E041``), rolls everything back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from ..company_field import company_column
from ..exceptions import CitusError
from .citus import CreateReferenceTable, DistributeTenantModel, _undistributed_tables, _worker_count
from .policy import tenant_models
from .shards import _fetch

__all__: list[str] = []


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert` did: the operations it ran and the rows it counted (the same before and after)."""

    operations: list[str]
    rows: dict[str, int]
    companies: int


def _counts(connection: BaseDatabaseWrapper, tables: list[str], tenant: dict[str, str]) -> dict[str, int]:
    """Rows per table, and per ``table:company`` for the tenant tables (``tenant``: table -> company column)."""
    quote = connection.ops.quote_name
    counts: dict[str, int] = {}
    for table in tables:
        counts[table] = int(_fetch(connection, f"SELECT count(*) FROM {quote(table)}")[0][0])  # noqa: S608
        if table in tenant:
            for company, count in _fetch(
                connection,
                f"SELECT {quote(tenant[table])}::text, count(*) FROM {quote(table)} GROUP BY 1",  # noqa: S608
            ):
                counts[f"{table}:{company}"] = int(count)
    return counts


def convert(connection: BaseDatabaseWrapper, say: Callable[[str], None] = lambda _: None) -> Conversion:
    """Run the applied migrations' Citus operations again on ``connection`` (a Citus coordinator).

    Raises :class:`~cobee_django.exceptions.CitusError` (nothing changed) when the database is not
    Citus, has no workers, a count differs, or a tenant table is left undistributed.
    """
    from ._catalog import is_citus

    if not is_citus(connection):
        raise CitusError(f"The database {connection.alias!r} has no citus extension: CREATE EXTENSION citus first.")
    if _worker_count(connection) == 0:
        raise CitusError(
            f"The Citus database {connection.alias!r} has no worker node: SELECT citus_add_node(host, port) for each "
            "worker, in this database, on the coordinator."
        )
    executor = MigrationExecutor(connection)
    loader = executor.loader
    applied = set(loader.applied_migrations)
    plan: list[tuple[str, str]] = []
    for leaf in loader.graph.leaf_nodes():
        plan += [node for node in loader.graph.forwards_plan(leaf) if node in applied and node not in plan]
    steps = []
    for node in plan:
        migration = loader.graph.nodes[node]
        for operation in migration.operations:
            if isinstance(operation, (DistributeTenantModel, CreateReferenceTable)):
                steps.append((node, operation))
    models = tenant_models(connection.alias)
    tenant = {m._meta.db_table: company_column(m) for m in models if not m._meta.parents}
    registry = {
        op._get_model(node[0], loader.project_state(node, at_end=True), op.model_name)._meta.db_table
        for node, op in steps
        if isinstance(op, CreateReferenceTable)
    }
    existing = {
        str(r[0])
        for r in _fetch(
            connection,
            "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(quote_ident(t)) IS NOT NULL",
            [sorted(set(tenant) | registry)],
        )
    }
    tables = sorted(existing)
    quote = connection.ops.quote_name
    with transaction.atomic(using=connection.alias):
        _fetch(connection, "SELECT set_config('statement_timeout', '0', true)")  # a maintenance run, to its end
        # Threat: a write between the counts would hide (or fake) a lost row; writers wait instead.
        _fetch(connection, f"LOCK TABLE {', '.join(quote(t) for t in tables)} IN EXCLUSIVE MODE")
        before = _counts(connection, tables, tenant)
        say(f"Counted {len(before)} figures over {len(tables)} tables before converting.")
        done = []
        with connection.schema_editor(atomic=False) as editor:
            for (app_label, name), operation in steps:
                state = loader.project_state((app_label, name), at_end=True)
                operation.database_forwards(app_label, editor, state, state)
                done.append(f"{app_label}.{name}: {operation.describe()}")
                say(f"  {done[-1]}")
        after = _counts(connection, tables, tenant)
        keys = sorted(set(before) | set(after))
        changed = [f"{k}: {before.get(k)} before, {after.get(k)} after" for k in keys if before.get(k) != after.get(k)]
        if changed:
            raise CitusError("Rolled back: row counts changed during the conversion (" + "; ".join(changed) + ").")
        left = _undistributed_tables(connection, models)
        if left:
            raise CitusError("Rolled back: " + " ".join(p.msg for p in left) + " " + left[0].hint)
    return Conversion(
        done,
        {t: before[t] for t in tables},
        len({key.split(":", 1)[1] for key in before if ":" in key}),
    )
