"""Citus: tenant tables distributed by company, the registry as reference tables.

Citus spreads a table over worker nodes by one column. cobee_django distributes every tenant table
by its company column, all in one co-location group, so one company's rows of every table live on
the same shard: a one-company query goes to one node, and joins between tenant tables that match
their company columns (the join restriction adds that condition when the database backend is
``cobee_django.db.backends.citus`` on a Citus server) run on each node without moving rows. The
registry (``Company``, ``Corporation``) is copied to every node as reference tables.

Citus needs keys that include the distribution column, so distributing a tenant table also:

- makes its primary key ``(company, id)`` (Django keeps ``id`` as the model's ``pk``; ids come from
  a default, a sequence or an identity column, so they stay unique in practice);
- makes a unique constraint on a foreign key to another tenant model (a one-to-one field)
  ``(company, fk)``: equivalent, because the composite foreign key below keeps both rows in one
  company. Any other unique that leaves the company out is refused (system check ``E041``);
- replaces foreign keys between tenant tables by composite ``(company, fk) -> (company, id)`` keys,
  which both Citus and the tenancy need (a row can never point into another company).

The operations run only on a PostgreSQL database with the ``citus`` extension; elsewhere they do
nothing and log once why. A Citus database that has no worker node is an error, not a silently
local table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps as global_apps
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.utils import truncate_name
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.models import ForeignKey, Model, UniqueConstraint

from ..company_field import company_column
from ..conf import Problem
from ..exceptions import CitusError
from ._catalog import fetch as _fetch
from ._catalog import is_citus

logger = logging.getLogger("cobee_django.citus")

#: Why operations were skipped, already logged in this process (once is enough).
_told: set[str] = set()

#: ``pg_dist_partition.partmethod``: hash-distributed, and ``n`` (none) for reference tables.
HASH, NONE = "h", "n"


def _worker_count(connection: BaseDatabaseWrapper) -> int:
    """Active primary nodes of this database that may hold shards (Citus keeps them per database)."""
    rows = _fetch(
        connection,
        "SELECT count(*) FROM pg_dist_node WHERE isactive AND noderole = 'primary' AND shouldhaveshards",
    )
    return int(rows[0][0])


@dataclass(frozen=True)
class _Placement:
    """How Citus holds one table: ``method`` is ``h`` (distributed), ``n`` (reference or Citus-local)."""

    method: str
    column: str | None
    reference: bool


def _placement(connection: BaseDatabaseWrapper, table: str) -> _Placement | None:
    """How Citus holds ``table``; ``None`` for a plain local table."""
    rows = _fetch(
        connection,
        "SELECT partmethod, column_to_column_name(logicalrelid, partkey), repmodel = 't' "
        "FROM pg_dist_partition WHERE logicalrelid = to_regclass(%s)",
        [connection.ops.quote_name(table)],
    )
    if not rows:
        return None
    method, column, reference = rows[0]
    return _Placement(str(method), column or None, bool(reference) and method == NONE)


def _tenant_tables() -> set[str]:
    """The tables of the project's tenant models (the current registry, not a migration's state)."""
    return {
        m._meta.db_table
        for m in global_apps.get_models()
        # TenantModel's marker (read here rather than imported: this module stays below the models).
        if getattr(m, "_cobee_tenant_model", False) is True and not m._meta.proxy and m._meta.managed
    }


def _say_once(reason: str, message: str, *args: Any) -> None:
    if reason not in _told:
        _told.add(reason)
        logger.info(message, *args)


def _foreign_keys(model: type[Model]) -> list[ForeignKey[Any, Any]]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, ForeignKey) and getattr(f, "db_constraint", True) and f.model is model
    ]


def _incoming(model: type[Model]) -> list[ForeignKey[Any, Any]]:
    """Foreign keys of other concrete models (through tables included) that point at ``model``."""
    found = []
    for rel in model._meta.related_objects:
        field = rel.field
        source = rel.related_model
        if (
            isinstance(field, ForeignKey)
            and getattr(field, "db_constraint", True)
            and isinstance(source, type)
            and source is not model
            and not source._meta.proxy
        ):
            found.append(field)
    return found


def _same_company_name(source: str, column: str, max_length: int) -> str:
    """The composite foreign key's name (the one ``AddSameCompanyConstraint`` uses too)."""
    return truncate_name(f"{source}_{column}_same_company", max_length)


class _CitusOperation(Operation):
    reversible = True
    reduces_to_sql = False
    atomic = True

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass  # database only: the models do not change

    def _get_model(self, app_label: str, state: ProjectState, name: str) -> Any:
        label, _, model_name = name.rpartition(".")
        return state.apps.get_model(label or app_label, model_name)

    def _connection(self, schema_editor: BaseDatabaseSchemaEditor, model: type[Model]) -> BaseDatabaseWrapper | None:
        """The connection, when this database is Citus and gets ``model``; ``None`` otherwise."""
        connection = schema_editor.connection
        if not self.allow_migrate_model(connection.alias, model):
            return None
        if not is_citus(connection):
            _say_once(
                connection.vendor,
                "Citus operations do nothing on %s database %r: it has no citus extension. Tables stay local.",
                connection.vendor,
                connection.alias,
            )
            return None
        if _worker_count(connection) == 0:
            raise CitusError(
                f"The Citus database {connection.settings_dict.get('NAME')!r} ({connection.alias!r}) has no worker "
                "node, so its tables cannot be distributed. Register the workers in this database "
                "(SELECT citus_add_node(host, port), run on the coordinator in this very database: Citus keeps "
                "its node list per database), then migrate again."
            )
        # Several distributed DDL statements share the migration's transaction: run them one shard
        # connection at a time, as Citus requires for DDL after writes in the same transaction.
        schema_editor.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'", params=None)
        # For the rest of this session (the migrate run): a table created with a foreign key to a
        # reference table stays a plain table until it is distributed, instead of being turned into
        # a Citus-local table, which Citus can neither distribute (identity ids) nor protect with policies.
        schema_editor.execute("SET citus.enable_local_reference_table_foreign_keys TO off", params=None)
        return connection

    @staticmethod
    def _drop_foreign_keys(schema_editor: BaseDatabaseSchemaEditor, table: str, *, incoming: bool) -> None:
        """Drop the foreign keys of ``table`` (or those pointing at it), as the catalogs list them."""
        connection = schema_editor.connection
        quote = schema_editor.quote_name
        rows = _fetch(
            connection,
            "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
            "AND (CASE WHEN %s THEN confrelid ELSE conrelid END) = to_regclass(%s) AND conrelid <> confrelid "
            "ORDER BY conname",
            [incoming, quote(table)],
        )
        for owner, name in rows:
            schema_editor.execute(f"ALTER TABLE {owner} DROP CONSTRAINT {quote(name)}", params=None)

    @staticmethod
    def _has_foreign_key(connection: BaseDatabaseWrapper, source: str, columns: list[str], target: str) -> bool:
        rows = _fetch(
            connection,
            "SELECT 1 FROM pg_constraint con WHERE con.contype = 'f' AND con.conrelid = to_regclass(%s) "
            "AND con.confrelid = to_regclass(%s) AND ARRAY(SELECT a.attname::text FROM unnest(con.conkey) "
            "WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n "
            "ORDER BY k.i) = %s::text[]",
            [connection.ops.quote_name(source), connection.ops.quote_name(target), columns],
        )
        return bool(rows)

    def _add_foreign_key(
        self, schema_editor: BaseDatabaseSchemaEditor, source: type[Model], field: ForeignKey[Any, Any]
    ) -> bool:
        """Add ``field``'s constraint in the form Citus accepts now; False when it cannot be added yet."""
        connection = schema_editor.connection
        quote = schema_editor.quote_name
        target: type[Model] = field.related_model
        source_table, target_table = source._meta.db_table, target._meta.db_table
        source_place, target_place = _placement(connection, source_table), _placement(connection, target_table)
        target_column = str(field.target_field.column)
        if target_place is not None and target_place.reference:
            if source_place is None or source_place.method != HASH:
                return False  # a local table: Citus would convert it (and everything it touches)
            if self._has_foreign_key(connection, source_table, [str(field.column)], target_table):
                return True
            sql = schema_editor._create_fk_sql(source, field, "_fk_%(to_table)s_%(to_column)s")  # type: ignore[attr-defined]
            schema_editor.execute(sql)
            return True
        if (
            target_place is not None
            and source_place is not None
            and target_place.method == HASH
            and source_place.method == HASH
            and target_place.column
            and source_place.column
        ):
            columns = [source_place.column, str(field.column)]
            if self._has_foreign_key(connection, source_table, columns, target_table):
                return True
            max_length = connection.ops.max_name_length() or 63
            if target_column != target._meta.pk.column:
                index = truncate_name(f"{target_table}_company_{target_column}_uniq", max_length)
                schema_editor.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(index)} ON {quote(target_table)} "
                    f"({quote(target_place.column)}, {quote(target_column)})",
                    params=None,
                )
            schema_editor.execute(
                f"ALTER TABLE {quote(source_table)} ADD CONSTRAINT "
                f"{quote(_same_company_name(source_table, str(field.column), max_length))} "
                f"FOREIGN KEY ({quote(source_place.column)}, {quote(str(field.column))}) "
                f"REFERENCES {quote(target_table)} ({quote(target_place.column)}, {quote(target_column)})",
                params=None,
            )
            return True
        return False


class DistributeTenantModel(_CitusOperation):
    """Distribute a tenant model's table by its company column, co-located with the other tenant tables.

    Forwards, on Citus: the primary key becomes ``(company, id)``, one-to-one uniques become
    ``(company, fk)``, every foreign key into or out of the table is dropped and added again in the
    form Citus accepts once both ends are Citus tables (composite between tenant tables; a key to a
    registry table waits for :class:`CreateReferenceTable`), then ``create_distributed_table``.
    A foreign key from a table that is not distributed (a many-to-many table, a model that is not a
    tenant model) cannot be kept: it is dropped and logged as a warning (Django's ``on_delete``
    still runs). Backwards: ``undistribute_table`` and the original keys.
    """

    def __init__(self, model_name: str, same_company_keys: bool = True) -> None:
        self.model_name = model_name
        #: False: this model's foreign keys to tenant tables are dropped, not made composite (the
        #: database then lets a row point into another company; the ORM's scoping still holds).
        self.same_company_keys = same_company_keys

    def describe(self) -> str:
        return f"Distribute {self.model_name} by company (Citus)"

    @property
    def migration_name_fragment(self) -> str:
        return f"distribute_{self.model_name.lower()}"

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._get_model(app_label, to_state, self.model_name)
        connection = self._connection(schema_editor, model)
        if connection is None:
            return
        table = model._meta.db_table
        quote = schema_editor.quote_name
        current = _placement(connection, table)
        if current is not None and current.method == HASH:
            logger.info("%s is already distributed by %s.", table, current.column)
            return
        company = company_column(model)
        uniques = self._unique_rewrites(connection, model, company)
        self._drop_foreign_keys(schema_editor, table, incoming=False)
        self._drop_foreign_keys(schema_editor, table, incoming=True)
        pk_name, pk_columns = self._primary_key(connection, table)
        if company not in pk_columns:
            schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(pk_name)}", params=None)
            columns = ", ".join(quote(c) for c in [company, *pk_columns])
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(pk_name)} PRIMARY KEY ({columns})", params=None
            )
        for name, column in uniques:
            schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}", params=None)
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} UNIQUE ({quote(company)}, {quote(column)})",
                params=None,
            )
        anchor = self._colocation_anchor(connection, table)
        with _rows_kept(schema_editor, table, company, "distributing"):
            schema_editor.execute(
                "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                params=[quote(table), company, quote(anchor) if anchor else "default"],
            )
        # Outgoing keys (to the registry once it is a reference table, to distributed tenant tables).
        for field in _foreign_keys(model):
            if not self.same_company_keys and field.name != "company" and _is_tenant_target(field):
                logger.warning(
                    "%s.%s: no database foreign key (same_company_keys=False).", model._meta.label, field.name
                )
                continue
            if not self._add_foreign_key(schema_editor, model, field):
                logger.debug(
                    "%s.%s: its foreign key is added when %s is a Citus table.",
                    model._meta.label,
                    field.name,
                    field.related_model._meta.label,
                )
        tenants = _tenant_tables()
        for field in _incoming(model):
            source = field.model
            if self._add_foreign_key(schema_editor, source, field):
                continue
            if source._meta.db_table in tenants:
                logger.debug(
                    "%s.%s: its foreign key is added when that table is distributed.", source._meta.label, field.name
                )
            else:
                logger.warning(
                    "%s.%s: Citus cannot keep a foreign key from a table that is not distributed by company to "
                    "the distributed table %s; the database no longer enforces it (Django's on_delete still runs).",
                    source._meta.label,
                    field.name,
                    table,
                )

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._get_model(app_label, from_state, self.model_name)
        connection = self._connection(schema_editor, model)
        if connection is None:
            return
        table = model._meta.db_table
        quote = schema_editor.quote_name
        current = _placement(connection, table)
        if current is None or current.method != HASH:
            return
        company = company_column(model)
        self._drop_foreign_keys(schema_editor, table, incoming=False)
        self._drop_foreign_keys(schema_editor, table, incoming=True)
        with _rows_kept(schema_editor, table, company, "undistributing"):
            schema_editor.execute("SELECT undistribute_table(%s)", params=[quote(table)])
        pk_name, pk_columns = self._primary_key(connection, table)
        if company in pk_columns and model._meta.pk.column != company:
            schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(pk_name)}", params=None)
            schema_editor.execute(
                f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(pk_name)} "
                f"PRIMARY KEY ({quote(model._meta.pk.column)})",
                params=None,
            )
        for field in model._meta.concrete_fields:
            if isinstance(field, ForeignKey) and field.unique and getattr(field, "db_constraint", True):
                name = self._unique_name(connection, table, [company, str(field.column)])
                if name:
                    schema_editor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}", params=None)
                    schema_editor.execute(
                        f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} UNIQUE ({quote(str(field.column))})",
                        params=None,
                    )
        # Django's own single-column keys, where the other end is a plain table again.
        for source, field in [(model, f) for f in _foreign_keys(model)] + [(f.model, f) for f in _incoming(model)]:
            other = field.related_model if source is model else source
            if _placement(connection, other._meta.db_table) is None:
                schema_editor.execute(
                    schema_editor._create_fk_sql(source, field, "_fk_%(to_table)s_%(to_column)s")  # type: ignore[attr-defined]
                )

    @staticmethod
    def _primary_key(connection: BaseDatabaseWrapper, table: str) -> tuple[str, list[str]]:
        rows = _fetch(
            connection,
            "SELECT con.conname, ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i) "
            "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) "
            "FROM pg_constraint con WHERE con.contype = 'p' AND con.conrelid = to_regclass(%s)",
            [connection.ops.quote_name(table)],
        )
        if not rows:
            raise CitusError(f"{table} has no primary key.")
        return str(rows[0][0]), list(rows[0][1])

    @staticmethod
    def _unique_name(connection: BaseDatabaseWrapper, table: str, columns: list[str]) -> str | None:
        rows = _fetch(
            connection,
            "SELECT con.conname FROM pg_constraint con WHERE con.contype = 'u' AND con.conrelid = to_regclass(%s) "
            "AND ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a "
            "ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) = %s::text[]",
            [connection.ops.quote_name(table), columns],
        )
        return str(rows[0][0]) if rows else None

    @staticmethod
    def _unique_rewrites(connection: BaseDatabaseWrapper, model: type[Model], company: str) -> list[tuple[str, str]]:
        """Unique constraints to widen to ``(company, fk)``; raise for any other unique without the company."""
        table = model._meta.db_table
        rows = _fetch(
            connection,
            "SELECT ic.relname, con.conname, ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) k(n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) "
            "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
            "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND NOT i.indisprimary ORDER BY ic.relname",
            [connection.ops.quote_name(table)],
        )
        by_column = {
            str(f.column): f
            for f in model._meta.concrete_fields
            if isinstance(f, ForeignKey) and f.name != "company" and _is_tenant_target(f)
        }
        rewrites = []
        for index, constraint, columns in rows:
            if company in columns:
                continue
            if constraint and len(columns) == 1 and columns[0] in by_column:
                rewrites.append((str(constraint), str(columns[0])))
                continue
            raise CitusError(
                f"{model._meta.label} cannot be distributed by company: the unique {constraint or index} on "
                f"({', '.join(columns)}) does not include {company}. Add the company to it (unique per company)."
            )
        return rewrites

    @staticmethod
    def _colocation_anchor(connection: BaseDatabaseWrapper, table: str) -> str | None:
        """The first distributed tenant table: every other one joins its co-location group."""
        tables = sorted(_tenant_tables() - {table})
        if not tables:
            return None
        rows = _fetch(
            connection,
            "SELECT c.relname FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
            "WHERE p.partmethod = 'h' AND p.logicalrelid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t) "
            "ORDER BY p.colocationid, c.oid LIMIT 1",
            [[connection.ops.quote_name(t) for t in tables]],
        )
        return str(rows[0][0]) if rows else None


@contextmanager
def _rows_kept(schema_editor: BaseDatabaseSchemaEditor, table: str, column: str, doing: str) -> Iterator[None]:
    """Copy ``table``'s rows (distribute or undistribute it) as a role that sees every row, counted.

    Citus copies the rows as the migrating role. Under forced row-level security the table's
    owner sees none of them: the copy would fail ("COPY FROM not supported with row-level
    security") or carry nothing. So ``FORCE`` is lifted for the copy and restored right after, in
    the migration's own transaction (an error rolls both back), policies whose form Citus refuses
    (a subquery, written on plain PostgreSQL) are rewritten first, and the rows are counted before
    and after: a difference is an error, which rolls the migration back.
    """
    from .policy import citus_policy_sql

    connection = schema_editor.connection
    quote = schema_editor.quote_name
    if doing == "distributing":
        for sql in citus_policy_sql(connection, table, column):
            schema_editor.execute(sql, params=None)
    flags = _fetch(
        connection,
        "SELECT c.relforcerowsecurity AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user) FROM pg_class c WHERE c.oid = to_regclass(%s)",
        [quote(table)],
    )
    lift = bool(flags and flags[0][0])
    if lift:
        schema_editor.execute(f"ALTER TABLE {quote(table)} NO FORCE ROW LEVEL SECURITY", params=None)
    count = f"SELECT count(*) FROM {quote(table)}"  # noqa: S608 (a table name, quoted)
    before = _fetch(connection, count)[0][0]
    yield
    after = _fetch(connection, count)[0][0]
    if lift:
        schema_editor.execute(f"ALTER TABLE {quote(table)} FORCE ROW LEVEL SECURITY", params=None)
    if after != before:
        raise CitusError(f"{doing.capitalize()} {table} changed its row count from {before} to {after}: rolled back.")


def _is_tenant_target(field: ForeignKey[Any, Any]) -> bool:
    target = field.related_model
    return isinstance(target, type) and target._meta.db_table in _tenant_tables()


class CreateReferenceTable(_CitusOperation):
    """Copy a registry table (``cobee_django.Company``, ``cobee_django.Corporation``...) to every node.

    Tenant tables reference it, and Citus allows a distributed table to reference only a reference
    table. Name the model as ``"app_label.Model"``. Run it after the tenant tables are distributed
    and after the reference tables it points at (``Corporation`` before ``Company``): it adds the
    tenant tables' foreign keys to it that waited. Backwards: ``undistribute_table``.
    """

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def describe(self) -> str:
        return f"Make {self.model_name} a reference table (Citus)"

    @property
    def migration_name_fragment(self) -> str:
        return f"reference_{self.model_name.rpartition('.')[2].lower()}"

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._get_model(app_label, to_state, self.model_name)
        connection = self._connection(schema_editor, model)
        if connection is None:
            return
        table = model._meta.db_table
        quote = schema_editor.quote_name
        current = _placement(connection, table)
        if current is None or not current.reference:
            for field in _foreign_keys(model):
                target_place = _placement(connection, field.related_model._meta.db_table)
                if target_place is None or not target_place.reference:
                    raise CitusError(
                        f"{model._meta.label}.{field.name} points at {field.related_model._meta.label}, which is not "
                        f"a reference table: run CreateReferenceTable({field.related_model._meta.label!r}) first."
                    )
            # Citus converts every local table linked to a reference table by foreign keys into a
            # Citus-local table, and refuses tables with policies: tenant tables still local keep
            # out of it, their keys to the registry wait until they are distributed.
            for source in sorted(_tenant_tables()):
                if _placement(connection, source) is None:
                    self._drop_foreign_keys(schema_editor, source, incoming=False)
            schema_editor.execute("SELECT create_reference_table(%s)", params=[quote(table)])
        for field in _incoming(model):
            self._add_foreign_key(schema_editor, field.model, field)

    def _drop_incoming(self, schema_editor: BaseDatabaseSchemaEditor, source: str, field: ForeignKey[Any, Any]) -> None:
        quote = schema_editor.quote_name
        rows = _fetch(
            schema_editor.connection,
            "SELECT con.conname FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid "
            "AND a.attnum = con.conkey[1] WHERE con.contype = 'f' AND con.conrelid = to_regclass(%s) "
            "AND con.confrelid = to_regclass(%s) AND a.attname = %s",
            [quote(source), quote(field.related_model._meta.db_table), str(field.column)],
        )
        for (name,) in rows:
            schema_editor.execute(f"ALTER TABLE {quote(source)} DROP CONSTRAINT {quote(name)}", params=None)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        model = self._get_model(app_label, from_state, self.model_name)
        connection = self._connection(schema_editor, model)
        if connection is None:
            return
        table = model._meta.db_table
        if _placement(connection, table) is None:
            return
        for field in _incoming(model):
            source_place = _placement(connection, field.model._meta.db_table)
            if source_place is not None and source_place.method == HASH:
                self._drop_incoming(schema_editor, field.model._meta.db_table, field)
        schema_editor.execute(
            "SELECT undistribute_table(%s, cascade_via_foreign_keys => true)",
            params=[schema_editor.quote_name(table)],
        )


def _distribution_problems(models: list[type[Model]]) -> list[Problem]:
    """What keeps tenant models from being distributed by company (E040), or costs a key (W040, W041).

    E040: a unique field or constraint without the company (Citus can only enforce uniqueness
    within one shard, so it must include the distribution column). A unique foreign key to a
    tenant model (a one-to-one field) is fine: :class:`DistributeTenantModel` widens it.
    """
    problems: list[Problem] = []
    tenant = {m._meta.db_table for m in models}
    hint = (
        "Make it unique per company: add 'company' to the constraint's fields (UniqueConstraint(fields=['company', "
        "...])), then migrate. Uniqueness across companies cannot be enforced on Citus."
    )
    for model in models:
        label = model._meta.label
        if model._meta.parents:
            problems.append(
                Problem(
                    "cobee_django.W041",
                    f"{label} inherits from a concrete model: its table has no company column, so it cannot be "
                    "distributed and stays on the coordinator, without a database key to its parent's table.",
                    "Prefer an abstract base (or a one-to-one tenant model) for models that are distributed.",
                )
            )
            continue
        for field in model._meta.concrete_fields:
            if not field.unique or field.primary_key:
                continue
            if isinstance(field, ForeignKey) and field.related_model._meta.db_table in tenant:
                continue
            problems.append(
                Problem(
                    "cobee_django.E040",
                    f"{label} cannot be distributed by company: its field {field.name!r} is unique across companies.",
                    hint,
                )
            )
        groups = [(", ".join(fields), list(fields)) for fields in model._meta.unique_together]
        groups += [(c.name, list(c.fields)) for c in model._meta.constraints if isinstance(c, UniqueConstraint)]
        for name, fields in groups:
            if "company" in fields or "company_id" in fields:
                continue
            problems.append(
                Problem(
                    "cobee_django.E040",
                    f"{label} cannot be distributed by company: the unique constraint {name!r} does not include "
                    "the company.",
                    hint,
                )
            )
        for m2m in model._meta.local_many_to_many:
            through = m2m.remote_field.through
            if isinstance(through, type) and through._meta.auto_created:
                problems.append(
                    Problem(
                        "cobee_django.W040",
                        f"The many-to-many table of {label}.{m2m.name} has no company column: on Citus it stays on "
                        "the coordinator, and Citus cannot keep its database foreign keys.",
                        "Give the field an explicit 'through' model that is a TenantModel, and distribute it.",
                    )
                )
        for rel in model._meta.related_objects:
            source = rel.related_model
            if (
                isinstance(source, type)
                and isinstance(rel.field, ForeignKey)
                and getattr(rel.field, "db_constraint", True)
                and source._meta.db_table not in tenant
            ):
                problems.append(
                    Problem(
                        "cobee_django.W040",
                        f"{source._meta.label}.{rel.field.name} points at the tenant model {label} from a table that "
                        "is not distributed by company: Citus cannot keep its database foreign key (Django's "
                        "on_delete still runs).",
                        "Make the pointing model a tenant model (an explicit many-to-many 'through' model that is a "
                        "TenantModel), or accept the missing key.",
                    )
                )
    return problems


def _undistributed_tables(connection: BaseDatabaseWrapper, models: list[type[Model]]) -> list[Problem]:
    """E041: tables of these tenant models that exist but are not distributed by company."""
    problems = []
    for model in models:
        if model._meta.parents:
            continue
        table = model._meta.db_table
        if not _fetch(connection, "SELECT to_regclass(%s) IS NOT NULL", [connection.ops.quote_name(table)])[0][0]:
            continue  # not migrated yet
        found = _placement(connection, table)
        if found is None or found.method != HASH:
            problems.append(
                Problem(
                    "cobee_django.E041",
                    f"The tenant model {model._meta.label} (table {table}) is not distributed on the Citus database "
                    f"{connection.alias!r}: its rows all live on the coordinator, outside the tenants' shards.",
                    f"Add cobee_django.db.citus.DistributeTenantModel({model.__name__!r}) to a migration of "
                    f"{model._meta.app_label}, then migrate.",
                )
            )
    return problems


__all__ = ["CreateReferenceTable", "DistributeTenantModel"]
