"""Scoped reads: the tenant filter is added when a query is compiled, not when it is built.

Design, in one paragraph: a tenant model's querysets carry a :class:`TenantQuery`. Every way
Django runs a query (iteration, ``count()``, ``exists()``, ``aggregate()``, ``values()``,
``iterator()``, ``in_bulk()``, ``get()``, prefetching, and a queryset used as a subquery inside
another query) ends in ``Query.get_compiler()``. :class:`TenantQuery` overrides that one method to
compile a copy of itself with ``company_id = %s`` (one company) or ``company_id IN (...)``
(several) added on its base table, for the tenant bound *at that moment*. A queryset built at
import time therefore filters by the tenant of whoever evaluates it, and with nothing bound
compilation raises :class:`~cobee_django.exceptions.NoTenantBound`.

``update()`` and ``delete()`` turn the query into Django's ``UpdateQuery``/``DeleteQuery``
classes, which would drop the override, so :class:`TenantQuerySet` adds the filter itself before
handing over; they run immediately, so "now" is still the moment the query runs.

Django's own code builds new querysets through ``Model._base_manager`` (a sliced operand of
``|`` or ``^``, related descriptors, the deletion collector, ``refresh_from_db()``, save's
existence check, ``contenttypes``' lookups, ``ForeignKey.validate()``). A tenant model's base
manager is a :class:`TenantManager` too (:mod:`cobee_django.models` installs it), so all of them
are scoped by construction; the few internal lookups that must see more read through
:func:`~cobee_django.company_field.unscoped_rows`, each one audited in :mod:`cobee_django.guards`.
Each relation with a tenant model at either end gets a join restriction (Django's
``get_extra_restriction`` hook, overridden in :mod:`cobee_django._django`), so every JOIN into a
tenant table carries the tenant condition in its ``ON`` clause. ``raw()`` and ``extra()`` cannot be
scoped, so they are refused outside ``unscoped()``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Manager, Model, Q, QuerySet
from django.db.models.lookups import Exact, In, Lookup
from django.db.models.query import RawQuerySet
from django.db.models.sql import Query
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.where import AND, ExtraWhere, NothingNode

from . import guards, state
from .company_field import COMPANY_ATTNAME, COMPANY_FIELD, unscoped_rows
from .exceptions import NoTenantBound, TenantViolation

if TYPE_CHECKING:
    from .state import Tenant

_M = TypeVar("_M", bound=Model)

#: Why ``raw()`` is refused, and what to use instead.
RAW_REFUSED = (
    "{label}.objects.raw() cannot be scoped to the tenant (the SQL is yours), so tenant managers refuse it "
    "outside unscoped(). Use the ORM, or on purpose: wrap the call in cobee_django.state.unscoped(), or run "
    "QuerySet(model={label}).raw(...) or a connection cursor, and filter on company_id yourself."
)

#: Why ``extra()`` is refused, and what to use instead.
EXTRA_REFUSED = (
    "{label}.objects.extra() cannot be scoped to the tenant (its SQL fragments are yours and may read any "
    "table), so tenant querysets refuse it outside unscoped(). Use the ORM's expressions (annotate(), "
    "Subquery, Func), which are scoped; or on purpose wrap the call in cobee_django.state.unscoped()."
)


def _refuse_own_sql(message: str) -> None:
    """Raise unless inside ``unscoped()``: ``NoTenantBound`` with nothing bound, else ``TenantViolation``."""
    try:
        scope = state.require_scope()
    except NoTenantBound as exc:
        raise NoTenantBound(f"{message} {state.NO_TENANT_MESSAGE}") from exc
    if scope is not state.UNSCOPED:
        raise TenantViolation(message)


#: ``"table"."column"`` (or with MySQL's backticks): all Django's own ``extra()`` call writes (the
#: prefetch of a many-to-many relation selects the through table's column with it).
_COLUMN_REFERENCE = re.compile(r'(?:"\w+"|`\w+`)\.(?:"\w+"|`\w+`)', re.ASCII)


def _is_column_reference(sql: object, params: object = ()) -> bool:
    """True for a bare qualified column: it reads nothing but a table already in the query's FROM."""
    return isinstance(sql, str) and not params and _COLUMN_REFERENCE.fullmatch(sql) is not None


def _has_own_sql(query: Query) -> bool:
    """True when ``query`` carries ``extra()`` SQL: extra selects, extra tables or an extra ``WHERE``.

    An extra select that is a bare qualified column (Django's many-to-many prefetch) is not SQL of
    its own: it reads a table the query already joins, under that join's tenant condition.
    """
    if query.extra_tables or query.extra_order_by:
        return True
    if any(not _is_column_reference(sql, params) for sql, params in query.extra.values()):
        return True
    nodes: list[Any] = [query.where]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ExtraWhere):
            return True
        nodes.extend(getattr(node, "children", ()))
    return False


def inherits_company(model: type[Model]) -> bool:
    """True for a multi-table child of a tenant model: its company column is in a parent's table."""
    field = model._meta.get_field(COMPANY_FIELD)
    return field.model._meta.concrete_model is not model._meta.concrete_model


class NoRows:
    """``1 = 0``: a condition that compiles inside a JOIN's ``ON`` clause without emptying the query.

    Unlike ``NothingNode``, which empties the whole query, and not an ``ExtraWhere`` (the mark of
    ``extra()`` SQL, refused on tenant queries).
    """

    contains_aggregate = False
    contains_over_clause = False

    def as_sql(self, compiler: Any = None, connection: Any = None) -> tuple[str, list[Any]]:
        return "1 = 0", []

    def get_refs(self) -> set[str]:
        return set()

    def replace_expressions(self, replacements: dict[Any, Any]) -> NoRows:
        return self

    def get_group_by_cols(self) -> list[Any]:
        return []

    def relabeled_clone(self, change_map: dict[str, str]) -> NoRows:
        return self


def tenant_condition(model: type[Model], alias: str, tenant: Tenant) -> NoRows | Lookup[Any]:
    """``alias.company_id`` limited to ``tenant``'s companies (``model`` has the company field)."""
    ids = tenant.company_ids
    if ids and inherits_company(model):
        # A multi-table child: its primary key is its parent's, whose table holds the company.
        owner: Any = model._meta.get_field(COMPANY_FIELD).model
        rows = unscoped_rows(owner).filter(**{f"{COMPANY_ATTNAME}__in": tenant.sorted_company_ids}).values("pk")
        return In(model._meta.pk.get_col(alias), rows.query)
    column = model._meta.get_field(COMPANY_FIELD).get_col(alias)  # type: ignore[union-attr]
    if not ids:
        return NoRows()
    if len(ids) == 1:
        return Exact(column, next(iter(ids)))
    return In(column, tenant.sorted_company_ids)


def on_citus(connection: BaseDatabaseWrapper) -> bool:
    """What the database backend says: ``cobee_django.db.backends.citus`` on a Citus server."""
    return getattr(connection.features, "is_citus", False) is True


class SameCompanyJoin(Exact):
    """``lhs = rhs`` between two company columns, written only on Citus (elsewhere it compiles to nothing).

    Joins between tenant tables carry ``a.company_id = b.company_id`` so that Citus runs them on
    each shard (co-located). PostgreSQL does not need it, and its planner would treat it as
    independent of the foreign key's own condition and underestimate the join's rows (a corporation
    report measured 1.4x slower with it), so there the join is left as it was.
    """

    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> Any:
        if not on_citus(connection):
            return "", ()
        return super().as_sql(compiler, connection)


def same_company_condition(model: type[Model], alias: str, other: type[Model], other_alias: str) -> Lookup[Any]:
    """``alias.company_id = other_alias.company_id`` on Citus: the join is co-located (:class:`SameCompanyJoin`)."""
    column = model._meta.get_field(COMPANY_FIELD).get_col(alias)  # type: ignore[union-attr]
    return SameCompanyJoin(column, other._meta.get_field(COMPANY_FIELD).get_col(other_alias))  # type: ignore[union-attr]


def add_tenant_condition(query: Query, tenant: Tenant) -> None:
    """Limit ``query`` (in place) to the rows of ``tenant``'s companies, on its base table."""
    opts = query.get_meta()
    if query.alias_map:
        alias = query.base_table
        if not query.alias_refcount[alias] or query.alias_map[alias].table_name != opts.db_table:
            # Only the inner query of an exclude() across a relation drops its base table (Django
            # trims leading joins); the join restriction below scopes the table it starts from.
            return
    else:
        alias = query.get_initial_alias()
    if not tenant.company_ids:
        query.where.add(NothingNode(), AND)
    elif inherits_company(opts.model):
        # A multi-table child: the condition goes on its parent's table, through the parent link.
        query.add_q(Q(**{f"{COMPANY_ATTNAME}__in": tenant.sorted_company_ids}))
    else:
        query.where.add(tenant_condition(query.model, alias, tenant), AND)  # type: ignore[arg-type]


class TenantQuery(Query):
    """A ``Query`` that adds the bound tenant's filter every time it is compiled."""

    def get_compiler(
        self,
        using: str | None = None,
        connection: BaseDatabaseWrapper | None = None,
        elide_empty: bool = True,
    ) -> SQLCompiler:
        if _has_own_sql(self):
            # extra() SQL reads whatever it names (a query built in unscoped() and run later, or
            # Query.add_extra() called directly): the same refusal as QuerySet.extra().
            _refuse_own_sql(EXTRA_REFUSED.format(label=self.get_meta().label))
        scope = state.require_scope()  # raises NoTenantBound: fail closed
        query: Query = self
        if isinstance(scope, state.Tenant):
            query = self.clone()
            add_tenant_condition(query, scope)
        compiler: SQLCompiler = Query.get_compiler(query, using, connection, elide_empty)
        return compiler


class TenantQuerySet(QuerySet[_M]):
    """The queryset of tenant models: reads, updates and deletes stay inside the bound tenant."""

    def __init__(
        self,
        model: type[_M] | None = None,
        query: Query | None = None,
        using: str | None = None,
        hints: dict[str, Any] | None = None,
    ) -> None:
        if query is None and model is not None:
            query = TenantQuery(model)
        super().__init__(model=model, query=query, using=using, hints=hints)

    def _scoped(self) -> TenantQuerySet[_M]:
        """A copy filtered by the tenant bound now, for operations that run immediately."""
        clone: TenantQuerySet[_M] = self._chain()  # type: ignore[attr-defined]
        scope = state.require_scope()
        if isinstance(scope, state.Tenant):
            add_tenant_condition(clone.query, scope)
        return clone

    def update(self, **kwargs: Any) -> int:
        guards.check_update(self, kwargs)
        return super(TenantQuerySet, self._scoped()).update(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]

    def _update(self, values: Any, *args: Any, **kwargs: Any) -> Any:
        # Used by Django internals (save() through the base manager, bulk_update's fallbacks); same
        # filter as update(). Django 6 passes returning_fields too: whatever it passes goes through.
        return super(TenantQuerySet, self._scoped())._update(values, *args, **kwargs)  # type: ignore[misc]

    _update.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        return super(TenantQuerySet, self._scoped()).delete()

    delete.alters_data = True  # type: ignore[attr-defined]

    def _raw_delete(self, using: str | None) -> int:
        # Django's fast-delete path; it swaps the query class, so filter before it does.
        return super(TenantQuerySet, self._scoped())._raw_delete(using)

    _raw_delete.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(
        self,
        objs: Iterable[_M],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Collection[str] | None = None,
        unique_fields: Collection[str] | None = None,
    ) -> list[_M]:
        objs = list(objs)
        if update_conflicts:
            guards.check_upsert(unique_fields, update_fields)
        guards.check_new_rows(
            self.model, objs, using=self.db, validate_unique=not (ignore_conflicts or update_conflicts)
        )
        return super().bulk_create(
            objs,
            batch_size=batch_size,
            ignore_conflicts=ignore_conflicts,
            update_conflicts=update_conflicts,
            update_fields=update_fields,
            unique_fields=unique_fields,
        )

    bulk_create.alters_data = True  # type: ignore[attr-defined]

    def bulk_update(self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None) -> int:
        objs = list(objs)
        guards.check_rows(self.model, objs, using=self.db, fields=fields)
        with guards.bulk_update_checked():
            return super().bulk_update(objs, fields, batch_size=batch_size)

    bulk_update.alters_data = True  # type: ignore[attr-defined]

    def raw(
        self,
        raw_query: Any,
        params: Sequence[Any] | Mapping[str, Any] = (),
        translations: dict[str, str] | None = None,
        using: str | None = None,
    ) -> RawQuerySet[_M]:
        # Raw SQL reads whatever it names: with no tenant condition it would return every company's rows.
        _refuse_own_sql(RAW_REFUSED.format(label=self.model._meta.label))
        return super().raw(raw_query, params, translations, using)

    def extra(
        self,
        select: dict[str, Any] | None = None,
        where: Sequence[str] | None = None,
        params: Sequence[Any] | None = None,
        tables: Sequence[str] | None = None,
        order_by: Sequence[Any] | None = None,
        select_params: Sequence[Any] | None = None,
    ) -> QuerySet[Any, Any]:
        # extra(select={"x": "SELECT MAX(pay) FROM payslip"}) reads every company's rows: its SQL is yours.
        columns_only = not (where or params or tables or order_by or select_params) and all(
            _is_column_reference(sql) for sql in (select or {}).values()
        )
        if not columns_only:
            _refuse_own_sql(EXTRA_REFUSED.format(label=self.model._meta.label))
        # Inside unscoped() (or a bare column reference): the caller's own SQL, on purpose.
        return super().extra(select, where, params, tables, order_by, select_params)  # noqa: S610


class TenantManager(Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """The default manager of tenant models. Not used in migrations: historical models are plain."""

    use_in_migrations = False


# Internals, left out: add_tenant_condition, install_relation_scoping, NoRows, same_company_condition,
# tenant_condition (the machinery of the three classes); COMPANY_FIELD and
# is_tenant_model still import from here but belong to cobee_django.company_field.
__all__ = ["TenantManager", "TenantQuerySet"]
