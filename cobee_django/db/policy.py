"""What a protected tenant table looks like in PostgreSQL, and how to tell whether it is one.

Each tenant table gets row-level security, enabled and forced (so the owner is held too), and two
permissive policies:

- ``cobee_tenant``: a row is visible, and may be written, only when its company is in
  ``cobee.company_ids``, a transaction-local setting holding a uuid array literal. Unset or empty
  means no rows: the database fails closed exactly like the ORM.
- ``cobee_bypass``: every row, when ``cobee.rls_bypass`` is ``on``. Only the code path behind
  :func:`cobee_django.state.unscoped` sets it, and it logs each time (see :mod:`cobee_django.db.rls`).

Foreign keys between tenant tables additionally get a composite ``(company, fk)`` key referencing
``(company, pk)``: PostgreSQL checks foreign keys without row-level security, so without it a
caller could point at another company's row and learn from the answer whether that row exists.

The functions below read the catalogs; they run with the connection of the role being judged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import truncate_name
from django.db.models import ForeignKey, Model

from ..company_field import company_column
from ..conf import Problem
from ._catalog import fetch, is_citus

__all__: list[str] = []

#: The transaction-local settings the policies read.
COMPANY_IDS_SETTING = "cobee.company_ids"
BYPASS_SETTING = "cobee.rls_bypass"

TENANT_POLICY = "cobee_tenant"
BYPASS_POLICY = "cobee_bypass"
POLICIES = (TENANT_POLICY, BYPASS_POLICY)

# Scalar subqueries become init plans: the setting is parsed once per statement, not once per row,
# and ``company_id = ANY (...)`` can still use the company index.
# (The outer cast keeps PostgreSQL from reading ``ANY ((SELECT ...))`` as ``ANY (subquery)``.)
_COMPANY_IDS = f"(SELECT nullif(current_setting('{COMPANY_IDS_SETTING}', true), '')::uuid[])::uuid[]"
_BYPASS = f"(SELECT current_setting('{BYPASS_SETTING}', true) = 'on')"
# Citus refuses subqueries in the policies of distributed tables, so on a Citus database the same
# tests are written as plain stable expressions (evaluated by each shard query on the workers;
# used as an index condition, the array is still read once per scan).
_CITUS_COMPANY_IDS = f"nullif(current_setting('{COMPANY_IDS_SETTING}', true), '')::uuid[]"
_CITUS_BYPASS = f"(current_setting('{BYPASS_SETTING}', true) = 'on')"

Quote = Callable[[str], str]


def tenant_models(alias: str | None = None) -> list[type[Model]]:
    """Concrete tenant models with a table of their own (on ``alias`` when given)."""
    from ..models import TenantModel

    found: list[type[Model]] = []
    for model in apps.get_models():
        meta = model._meta
        if not issubclass(model, TenantModel) or meta.proxy or not meta.managed:
            continue
        if alias is None or router.allow_migrate_model(alias, model):
            found.append(model)
    return found


def tenant_foreign_keys(model: type[Model]) -> list[ForeignKey[Any, Any]]:
    """Foreign keys (with a database constraint) from ``model`` to a tenant model, company excluded."""
    from ..models import TenantModel

    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, ForeignKey)
        and field.name != "company"
        and getattr(field, "db_constraint", True)
        and isinstance(field.related_model, type)
        and issubclass(field.related_model, TenantModel)
    ]


def _policy_sql(t: str, c: str, citus: bool) -> list[str]:
    tenant = f"{c} = ANY ({_CITUS_COMPANY_IDS if citus else _COMPANY_IDS})"
    bypass = _CITUS_BYPASS if citus else _BYPASS
    return [
        f"CREATE POLICY {TENANT_POLICY} ON {t} AS PERMISSIVE FOR ALL USING ({tenant}) WITH CHECK ({tenant})",
        f"CREATE POLICY {BYPASS_POLICY} ON {t} AS PERMISSIVE FOR ALL USING ({bypass}) WITH CHECK ({bypass})",
    ]


def enable_sql(table: str, column: str, quote: Quote, *, citus: bool = False) -> list[str]:
    """Statements that enable, force and attach the policies to one tenant table.

    ``citus``: write the policies in the form Citus accepts on distributed tables (no subquery).
    Citus copies them to the shards when the table is distributed later, and propagates them to
    the shards when the table already is: either order of the migrations works.
    """
    t, c = quote(table), quote(column)
    return [
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
        *_policy_sql(t, c, citus),
    ]


def citus_policy_sql(connection: BaseDatabaseWrapper, table: str, column: str) -> list[str]:
    """Statements that rewrite a table's policies in the form Citus accepts; none if it has none.

    For a table protected on plain PostgreSQL and distributed afterwards (the Citus extension
    created later): ``create_distributed_table`` refuses the subquery form, so run these first.
    """
    quote = connection.ops.quote_name
    found = fetch(
        connection,
        "SELECT count(*) FROM pg_policy WHERE polrelid = to_regclass(%s) AND polname = ANY (%s)",
        [quote(table), list(POLICIES)],
    )
    if not found or not found[0][0]:
        return []
    t = quote(table)
    return [*(f"DROP POLICY IF EXISTS {name} ON {t}" for name in POLICIES), *_policy_sql(t, quote(column), True)]


def disable_sql(table: str, quote: Quote) -> list[str]:
    """Statements that undo :func:`enable_sql`."""
    t = quote(table)
    return [
        f"DROP POLICY IF EXISTS {BYPASS_POLICY} ON {t}",
        f"DROP POLICY IF EXISTS {TENANT_POLICY} ON {t}",
        f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY",
    ]


def same_company_names(model: type[Model], field: ForeignKey[Any, Any], max_length: int) -> tuple[str, str]:
    """The (unique index on the target, constraint on the source) names for one foreign key."""
    target = field.related_model._meta.db_table
    source = model._meta.db_table
    return (
        truncate_name(f"{target}_company_pk_uniq", max_length),
        truncate_name(f"{source}_{field.column}_same_company", max_length),
    )


def same_company_sql(model: type[Model], field: ForeignKey[Any, Any], quote: Quote, max_length: int) -> list[str]:
    """Statements that make ``field`` unable to point at a row of another company."""
    target: type[Model] = field.related_model
    index, constraint = same_company_names(model, field, max_length)
    target_table, target_company = quote(target._meta.db_table), quote(company_column(target))
    target_key = quote(field.target_field.column)
    return [
        f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(index)} ON {target_table} ({target_company}, {target_key})",
        # Not deferrable, unlike Django's own: it must fail at once whether the target exists or not.
        f"ALTER TABLE {quote(model._meta.db_table)} ADD CONSTRAINT {quote(constraint)} "
        f"FOREIGN KEY ({quote(company_column(model))}, {quote(field.column)}) "
        f"REFERENCES {target_table} ({target_company}, {target_key})",
    ]


def has_constraint(connection: BaseDatabaseWrapper, table: str, name: str) -> bool:
    """Whether ``table`` has a constraint called ``name``."""
    rows = fetch(
        connection,
        "SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(%s) AND conname = %s",
        [connection.ops.quote_name(table), name],
    )
    return bool(rows)


def drop_same_company_sql(model: type[Model], field: ForeignKey[Any, Any], quote: Quote, max_length: int) -> list[str]:
    """Statements that undo :func:`same_company_sql` (the unique index stays; others may use it)."""
    _, constraint = same_company_names(model, field, max_length)
    return [f"ALTER TABLE {quote(model._meta.db_table)} DROP CONSTRAINT IF EXISTS {quote(constraint)}"]


def _tables(connection: BaseDatabaseWrapper) -> list[str]:
    return [connection.ops.quote_name(m._meta.db_table) for m in tenant_models(connection.alias)]


def role_problems(connection: BaseDatabaseWrapper) -> list[Problem]:
    """Why the connected role cannot be held by row-level security, if it cannot (E021, E022)."""
    # The role itself, or one it may SET ROLE to: either way row-level security is one statement away.
    rows = fetch(
        connection,
        "SELECT r.rolname, r.rolsuper FROM pg_roles r WHERE (r.rolsuper OR r.rolbypassrls) "
        "AND pg_has_role(current_user, r.oid, 'MEMBER') ORDER BY r.rolname <> current_user, r.rolname",
        [],
    )
    user = fetch(connection, "SELECT current_user", [])[0][0]
    problems = []
    if rows:
        role, superuser = rows[0]
        attribute = "SUPERUSER" if superuser else "BYPASSRLS"
        who = f"has {attribute}" if role == user else f"is a member of {role!r}, which has {attribute}"
        problems.append(
            Problem(
                "cobee_django.E021",
                f"The database role {user!r} of {connection.alias!r} {who}: row-level security does not hold it.",
                "Connect as a role without SUPERUSER and BYPASSRLS that is not a member of such a role "
                "(a dedicated runtime role); see the row-level security docs.",
            )
        )
    owned = fetch(
        connection,
        "SELECT c.relname FROM pg_class c WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t) "
        "AND pg_has_role(current_user, c.relowner, 'MEMBER') ORDER BY c.relname",
        [_tables(connection)],
    )
    if owned:
        names = ", ".join(row[0] for row in owned)
        problems.append(
            Problem(
                "cobee_django.E022",
                f"The database role {user!r} of {connection.alias!r} owns (or may act as the owner of) the tenant "
                f"tables {names}.",
                "An owner can turn row-level security off. Run migrations as the owner and serve requests as "
                "another role that holds only SELECT, INSERT, UPDATE and DELETE.",
            )
        )
    return problems


def forced_tables(connection: BaseDatabaseWrapper) -> list[str]:
    """Tenant tables on which row-level security is enabled and forced."""
    rows = fetch(
        connection,
        "SELECT c.relname FROM pg_class c WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest(%s::text[]) t) "
        "AND c.relrowsecurity AND c.relforcerowsecurity ORDER BY c.relname",
        [_tables(connection)],
    )
    return [row[0] for row in rows]


def table_problems(connection: BaseDatabaseWrapper) -> list[Problem]:
    """Tenant tables that are not protected, or whose protection is widened (E023)."""
    problems = []
    for model in tenant_models(connection.alias):
        table = model._meta.db_table
        rows = fetch(
            connection,
            "SELECT c.relrowsecurity, c.relforcerowsecurity, "
            "coalesce(array_agg(p.polname) FILTER (WHERE p.polname IS NOT NULL), '{}'), "
            "coalesce(array_agg(p.polname) FILTER (WHERE p.polpermissive AND NOT p.polname = ANY (%s)), '{}') "
            "FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid "
            "WHERE c.oid = to_regclass(%s) GROUP BY c.oid",
            [list(POLICIES), connection.ops.quote_name(table)],
        )
        if not rows:
            continue  # not migrated yet: the migration checks report that
        enabled, forced, policies, foreign = rows[0]
        missing = [p for p in POLICIES if p not in policies]
        if enabled and forced and not missing and not foreign:
            continue
        if foreign:
            why = f"it has other permissive policies ({', '.join(foreign)}), which widen what a tenant sees"
        elif missing:
            why = f"it lacks the policies {', '.join(missing)}"
        else:
            why = "row-level security is not enabled and forced on it"
        problems.append(
            Problem(
                "cobee_django.E023",
                f"The tenant model {model._meta.label} (table {table}) is not protected: {why}.",
                f"Add cobee_django.db.operations.EnableRowLevelSecurity({model.__name__!r}) to a migration of "
                f"{model._meta.app_label}; make any extra policy RESTRICTIVE.",
            )
        )
    return problems


def foreign_key_problems(connection: BaseDatabaseWrapper) -> list[Problem]:
    """Foreign keys between tenant tables that could point across companies (E024)."""
    problems = []
    for model in tenant_models(connection.alias):
        for field in tenant_foreign_keys(model):
            target: type[Model] = field.related_model
            found = fetch(
                connection,
                "SELECT 1 FROM pg_constraint con WHERE con.contype = 'f' "
                "AND con.conrelid = to_regclass(%s) AND con.confrelid = to_regclass(%s) "
                "AND ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a "
                "ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i) = %s::text[] "
                "AND ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a "
                "ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i) = %s::text[]",
                [
                    connection.ops.quote_name(model._meta.db_table),
                    connection.ops.quote_name(target._meta.db_table),
                    [company_column(model), field.column],
                    [company_column(target), field.target_field.column],
                ],
            )
            if not found:
                problems.append(
                    Problem(
                        "cobee_django.E024",
                        f"The foreign key {model._meta.label}.{field.name} can point at a row of another company.",
                        f"Add cobee_django.db.operations.AddSameCompanyConstraint({model.__name__!r}, "
                        f"{field.name!r}) to a migration of {model._meta.app_label}.",
                    )
                )
    return problems


# Run by Citus on every shard, with ``%s`` replaced by the shard's name: is it protected like its table?
_SHARD_PROTECTED = (
    "SELECT c.relrowsecurity AND c.relforcerowsecurity AND (SELECT count(*) FROM pg_policy p "
    "WHERE p.polrelid = c.oid AND p.polname IN ('cobee_tenant', 'cobee_bypass')) = 2 "
    "FROM pg_class c WHERE c.oid = '%s'::regclass"
)


def shard_problems(connection: BaseDatabaseWrapper) -> list[Problem]:
    """Shards of distributed tenant tables that lack their table's protection (E025, Citus only).

    On Citus the policies that hold are the shards' own, on the workers: a shard changed by hand
    on a worker (or copied before the policies existed) would show its rows to anyone.
    """
    if not is_citus(connection):
        return []
    problems = []
    # A table reported by E023 already: its shards are not protected either, one error is enough.
    reported = " ".join(problem.msg for problem in table_problems(connection))
    for model in tenant_models(connection.alias):
        table = connection.ops.quote_name(model._meta.db_table)
        if f"{model._meta.label} " in reported:
            continue
        if fetch(connection, "SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass(%s)", [table]):
            rows = fetch(
                connection,
                "SELECT shardid FROM run_command_on_shards(%s, %s) WHERE NOT success OR result <> 't' ORDER BY 1",
                [table, _SHARD_PROTECTED],
            )
            if rows:
                shards = ", ".join(str(row[0]) for row in rows[:5]) + (" ..." if len(rows) > 5 else "")
                problems.append(
                    Problem(
                        "cobee_django.E025",
                        f"{len(rows)} shard(s) of the tenant model {model._meta.label} (table "
                        f"{model._meta.db_table}) lack row-level security or its policies: {shards}.",
                        "Run EnableRowLevelSecurity's reverse and forward again on the coordinator (Citus propagates "
                        "it to every shard), and never change shards on the workers by hand.",
                    )
                )
    return problems
