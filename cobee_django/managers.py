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

Django's base manager (``Model._base_manager``) stays unscoped, because Django uses it for
cascades and saving. Forward foreign keys and reverse one-to-one accessors normally read through
it; :func:`install_relation_scoping` swaps those accessors, for relations that point at a tenant
model, for ones that read through a scoped queryset instead. It also gives each relation with a
tenant model at either end a join restriction (Django's ``get_extra_restriction`` hook), so every
JOIN into a tenant table carries the tenant condition in its ``ON`` clause.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django.apps import apps
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Manager, Model, QuerySet
from django.db.models.expressions import Col
from django.db.models.fields.related import ForeignObject, ManyToOneRel, OneToOneRel
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.lookups import Exact, In, Lookup
from django.db.models.sql import Query
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.where import AND, ExtraWhere, NothingNode, WhereNode
from django.utils.functional import cached_property

from . import state
from .db.citus import CitusJoinCondition

if TYPE_CHECKING:
    from .state import Tenant

_M = TypeVar("_M", bound=Model)

#: The field every tenant model has, pointing at ``cobee_django.Company``.
COMPANY_FIELD = "company"


def is_tenant_model(model: Any) -> bool:
    """True for concrete and abstract subclasses of ``TenantModel``."""
    return isinstance(model, type) and getattr(model, "_cobee_tenant_model", False) is True


def tenant_condition(model: type[Model], alias: str, tenant: Tenant) -> ExtraWhere | Lookup[Any]:
    """``alias.company_id`` limited to ``tenant``'s companies (``model`` has the company field)."""
    column = model._meta.get_field(COMPANY_FIELD).get_col(alias)  # type: ignore[union-attr]
    ids = tenant.company_ids
    if not ids:
        # Unlike NothingNode, this compiles inside a JOIN's ON clause without emptying the query.
        return ExtraWhere(["1 = 0"], [])
    if len(ids) == 1:
        return Exact(column, next(iter(ids)))
    return In(column, tenant.sorted_company_ids)


def same_company_condition(model: type[Model], alias: str, other: type[Model], other_alias: str) -> Lookup[Any]:
    """``alias.company_id = other_alias.company_id`` on Citus: the join is co-located (``CitusJoinCondition``)."""
    column = model._meta.get_field(COMPANY_FIELD).get_col(alias)  # type: ignore[union-attr]
    return CitusJoinCondition(column, other._meta.get_field(COMPANY_FIELD).get_col(other_alias))  # type: ignore[union-attr]


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
    else:
        query.where.add(tenant_condition(query.model, alias, tenant), AND)  # type: ignore[arg-type]


def pinned_inside(query: Query, tenant: Tenant) -> bool:
    """True when ``query``'s own filter already keeps its base table to one of ``tenant``'s companies.

    A top-level ``company_id = X`` (ANDed, not negated) on the base table, with X a company the
    tenant reaches, limits every row to X: the tenant condition would only cost a clone of the
    query and a duplicate ``WHERE`` term. Views nested under a company (``CompanyFromURLMixin``)
    filter exactly so. Anything else (another company, ``IN``, an expression, an ``OR``) still
    gets the tenant condition.
    """
    where = query.where
    if where.connector != AND or where.negated or not query.alias_map:
        return False
    alias = query.base_table
    if not query.alias_refcount[alias]:
        return False
    field = query.get_meta().get_field(COMPANY_FIELD)
    ids = tenant.company_ids
    for child in where.children:
        if (
            isinstance(child, Exact)
            and isinstance(child.lhs, Col)
            and child.lhs.alias == alias
            and child.lhs.target is field
            and isinstance(child.rhs, uuid.UUID)
            and child.rhs in ids
        ):
            return True
    return False


class TenantQuery(Query):
    """A ``Query`` that adds the bound tenant's filter every time it is compiled."""

    def get_compiler(
        self,
        using: str | None = None,
        connection: BaseDatabaseWrapper | None = None,
        elide_empty: bool = True,
    ) -> SQLCompiler:
        tenant = state.current_scope()  # raises NoTenantBound: fail closed
        query: Query = self
        if tenant is not None and not pinned_inside(self, tenant):
            query = self.clone()
            add_tenant_condition(query, tenant)
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
        tenant = state.current_scope()
        if tenant is not None:
            add_tenant_condition(clone.query, tenant)
        return clone

    def update(self, **kwargs: Any) -> int:
        from .guards import check_update

        check_update(self, kwargs)
        return super(TenantQuerySet, self._scoped()).update(**kwargs)

    update.alters_data = True  # type: ignore[attr-defined]

    def _update(self, values: Any) -> Any:
        # Used by Django internals (e.g. bulk_update's fallbacks); same filter as update().
        return super(TenantQuerySet, self._scoped())._update(values)  # type: ignore[misc]

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
        from .guards import check_new_rows, check_upsert

        objs = list(objs)
        if update_conflicts:
            check_upsert(self.model, unique_fields, update_fields)
        check_new_rows(self.model, objs, using=self.db, validate_unique=not (ignore_conflicts or update_conflicts))
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
        from .guards import bulk_update_checked, check_rows

        objs = list(objs)
        check_rows(self.model, objs, using=self.db, fields=fields)
        with bulk_update_checked():
            return super().bulk_update(objs, fields, batch_size=batch_size)

    bulk_update.alters_data = True  # type: ignore[attr-defined]


class TenantManager(Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """The default manager of tenant models. Not used in migrations: historical models are plain."""

    use_in_migrations = False


def scoped_queryset(
    model: type[_M], using: str | None = None, hints: dict[str, Any] | None = None
) -> TenantQuerySet[_M]:
    """A plain scoped queryset over ``model``, ignoring any custom default manager."""
    return TenantQuerySet(model=model, using=using, hints=hints)


class _ScopedForwardMixin:
    field: ForeignObject[Any, Any]

    def get_queryset(self, **hints: Any) -> QuerySet[Any]:
        # Django reads forward relations through the unscoped base manager.
        return scoped_queryset(self.field.remote_field.model, hints=hints)


class _ScopedReverseOneToOneMixin:
    related: OneToOneRel

    def get_queryset(self, **hints: Any) -> QuerySet[Any]:
        return scoped_queryset(self.related.related_model, hints=hints)


class _GuardedReverseManyToOneMixin:
    rel: ManyToOneRel

    @cached_property
    def related_manager_cls(self) -> type:
        # A reverse foreign key's add(bulk=True) moves rows with an unscoped base-manager update.
        base: type = super().related_manager_cls  # type: ignore[misc]

        class GuardedRelatedManager(base):  # type: ignore[misc]
            def add(self, *objs: Any, bulk: bool = True) -> None:
                from .guards import check_reverse_add

                check_reverse_add(self.instance, self.field, objs, self.db)
                super().add(*objs, bulk=bulk)

            add.alters_data = True  # type: ignore[attr-defined]

        return GuardedRelatedManager


_scoped_classes: dict[tuple[type, type], type] = {}


def _scoped_class(descriptor_class: type, mixin: type) -> type:
    key = (descriptor_class, mixin)
    if key not in _scoped_classes:
        _scoped_classes[key] = type(f"Scoped{descriptor_class.__name__}", (mixin, descriptor_class), {})
    return _scoped_classes[key]


def scope_model_relations(model: type[Model]) -> None:
    """Make ``model``'s accessors that lead to tenant rows read through scoped querysets."""
    for field in model._meta.get_fields(include_hidden=True):
        if isinstance(field, ManyToOneRel) and field.one_to_many:
            if not (is_tenant_model(model) or is_tenant_model(field.related_model)):
                continue
            reverse = model.__dict__.get(field.get_accessor_name() or "")
            if type(reverse) is ReverseManyToOneDescriptor:
                reverse.__class__ = _scoped_class(type(reverse), _GuardedReverseManyToOneMixin)
            continue
        if field.many_to_one or field.one_to_one:
            if not is_tenant_model(field.related_model):
                continue
            name = field.get_accessor_name() if isinstance(field, OneToOneRel) else field.name
            if name is None:
                continue
            descriptor = model.__dict__.get(name)
            if isinstance(descriptor, ForwardManyToOneDescriptor) and not isinstance(descriptor, _ScopedForwardMixin):
                descriptor.__class__ = _scoped_class(type(descriptor), _ScopedForwardMixin)
            elif isinstance(descriptor, ReverseOneToOneDescriptor) and not isinstance(
                descriptor, _ScopedReverseOneToOneMixin
            ):
                descriptor.__class__ = _scoped_class(type(descriptor), _ScopedReverseOneToOneMixin)


def _restrict_joins(field: ForeignObject[Any, Any]) -> None:
    """Add the tenant condition to the ON clause of every join through ``field`` (both directions).

    Django asks the field for extra join conditions (``get_extra_restriction``) when it writes a
    JOIN, at compile time. Joins then stay inside the tenant whatever query they appear in: a
    filter across a relation, ``select_related()``, an annotation over a reverse relation, an
    ordering by a related field, even from a model that is not scoped. The method is set on the
    field instance, not its class, so migrations' historical models (built from clones) and the
    migration autodetector never see it.
    """
    if "get_extra_restriction" in field.__dict__:
        return
    original = field.get_extra_restriction
    remote: Any = field.related_model
    declaring: Any = field.model
    remote_is_tenant, declaring_is_tenant = is_tenant_model(remote), is_tenant_model(declaring)

    def get_extra_restriction(alias: str | None, related_alias: str | None) -> Any:
        # For a ForeignObject, ``alias`` is the remote table's alias and ``related_alias`` the
        # declaring table's, whichever direction the join goes.
        extra = original(alias, related_alias)  # type: ignore[arg-type]
        tenant = state.current_scope()
        if tenant is None:
            return extra
        conditions: list[Any] = []
        if remote_is_tenant and alias is not None:
            conditions.append(tenant_condition(remote, alias, tenant))
        if declaring_is_tenant and related_alias is not None:
            conditions.append(tenant_condition(declaring, related_alias, tenant))
            if remote_is_tenant and alias is not None:
                # Both rows in one company: the join is co-located when tables are distributed by company.
                conditions.append(same_company_condition(remote, alias, declaring, related_alias))
        if extra:
            conditions.append(extra)
        return WhereNode(conditions, AND) if conditions else None

    field.get_extra_restriction = get_extra_restriction  # type: ignore[method-assign]


def scope_model_joins(model: type[Model]) -> None:
    """Scope every join through a relation declared on ``model`` that has a tenant model on either end."""
    for field in model._meta.get_fields(include_hidden=True):
        if not isinstance(field, ForeignObject) or field.many_to_many or field.model is not model:
            continue
        if is_tenant_model(field.related_model) or is_tenant_model(model):
            _restrict_joins(field)


def install_relation_scoping() -> None:
    """Scope every relation accessor and join of the project that leads to a tenant model (run at startup)."""
    for model in apps.get_models(include_auto_created=True):
        scope_model_relations(model)
        scope_model_joins(model)


__all__ = [
    "COMPANY_FIELD",
    "TenantManager",
    "TenantQuery",
    "TenantQuerySet",
    "add_tenant_condition",
    "install_relation_scoping",
    "is_tenant_model",
    "scope_model_joins",
    "scoped_queryset",
    "tenant_condition",
]
