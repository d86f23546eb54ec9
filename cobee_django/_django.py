"""Every override of Django internals, in one place (checked on Django 4.2, 5.0, 5.1 and 5.2; CI adds 6.x).

``tests/test_django_internals.py`` asserts that each internal named here still looks as assumed, so
that a Django release that changes one fails loudly in CI instead of quietly unscoping a query.

Every manager of a tenant model is scoped
-----------------------------------------
Internals: ``Options.managers``, ``Options.base_manager`` (``django/db/models/options.py``) and
``BaseManager.get_queryset()`` (``django/db/models/manager.py``).

- ``Options.managers`` is a cached property: a copy (``copy.copy``) of each manager declared on the
  model, its abstract parents and mixins, and its concrete parents. ``Model.objects`` (the
  ``ManagerDescriptor``), ``_default_manager`` and ``managers_map`` all hand out these copies, and
  ``Options._expire_cache()`` (run by ``apps.clear_cache()`` whenever a model is registered, and by
  ``add_manager()``) drops them, to be rebuilt by the same property.
- ``Options.base_manager``, another cached property, is ``managers_map[Meta.base_manager_name]`` or,
  without one, a plain auto-created ``Manager``. Django builds querysets through it in many places
  (related descriptors, the deletion collector, ``refresh_from_db()``, save's update, a sliced
  operand of ``|``, ``contenttypes``).
- Every manager method reaches the rows through ``get_queryset()``: the methods copied from a
  queryset class (``Manager.from_queryset()``, ``QuerySet.as_manager()``) call it, and every related
  manager (``create_reverse_many_to_one_manager``, ``create_forward_many_to_many_manager``,
  ``create_generic_related_manager``) is a subclass of the related model's default manager's class
  whose ``get_queryset()`` calls ``super().get_queryset()``.

A tenant model's ``_meta`` is a :class:`TenantOptions` (set at ``class_prepared``, so models created
at any time are covered). Its ``managers`` property gives each copy a class derived from the
declared one whose ``get_queryset()`` turns whatever the declared one returns into a scoped queryset
(:func:`as_tenant_queryset`); its ``base_manager`` is a :class:`~cobee_django.managers.TenantManager`
when Django would auto-create a plain one, and the same scoped copy otherwise. So
``objects = models.Manager()``, a plain queryset's ``as_manager()``, an unscoped
``Meta.base_manager_name`` and the related managers built from any of them read only the bound
tenant's rows, whatever server runs the code and whether or not system checks ran. The derived class
keeps the declared class's name and module, so migrations serialise managers exactly as declared.
The system check ``cobee_django.W004`` still names such managers, because code that meant them to
read every company now reads one tenant (``unscoped()`` is the way to read every company).
Not covered: a manager method that builds a ``QuerySet`` itself instead of calling
``get_queryset()`` (that is a queryset you wrote, like ``unscoped_rows()``).

The join restriction
--------------------
Checked by running the suites on Django 4.2 and 5.2, and by reading Django 6.1's source (the same
hook, the same two callers, ``WhereNode``'s handling of an empty child and ``Field.__copy__``).

Internal: ``ForeignObject.get_extra_restriction(alias, related_alias)``, the hook through which a
relation adds a condition to the ``ON`` clause of every JOIN through it. Django calls it from two
places only:

- ``Join.as_sql()`` (``django/db/models/sql/datastructures.py``), while compiling a JOIN, with the
  joined table's alias and its parent's alias. For a reverse join the join field is the relation's
  ``ForeignObjectRel``, whose ``get_extra_restriction`` calls the field's with the two swapped.
- ``Query.trim_start()`` (``django/db/models/sql/query.py``), while building the inner query of an
  ``exclude()`` across a multi-valued relation, with ``None`` for the table it trimmed away.

Which argument names which table is the field's own business: a ``ForeignKey`` receives the remote
table's alias first, a ``GenericRelation`` its own model's (``contenttypes`` puts its content-type
condition on the second). The restriction here therefore never trusts the argument order. It returns
a condition, :class:`TenantJoinCondition`, that looks each alias up in the compiling query's
``alias_map`` when it is compiled and matches the table against the field's two models (and their
multi-table parents), then limits each tenant model's table to the bound tenant. Which side is a
tenant model comes from the models' metadata only.

Every ``ForeignObject`` gets it (foreign keys, one-to-one fields, the foreign keys of many-to-many
through tables, auto-created or explicit, multi-column ``ForeignObject`` and ``GenericRelation``): at
``class_prepared`` for models created at any time (``isolate_apps`` included) and again at start-up for
models prepared before this module was imported. The method is set on the field instance, not its
class, and decides at each call whether a tenant model is involved: migrations' historical models
(never tenant models) pass through untouched, and nothing reaches the migration autodetector.
Reverse foreign-key managers refuse rows outside the tenant in ``add()``
----------------------------------------------------------------------
Internals: ``ReverseManyToOneDescriptor.related_manager_cls`` (a cached property building the
related manager class with ``create_reverse_many_to_one_manager``,
``django/db/models/fields/related_descriptors.py``), and that manager's ``add(*objs, bulk=True)``,
which with ``bulk=True`` updates the rows through the related model's base manager. Each model's
reverse accessor is the class attribute ``model.__dict__[accessor_name]``, a
``ReverseManyToOneDescriptor``. Checked on Django 4.2, 5.0, 5.1, 5.2 and 6.0.

A scoped base manager would silently skip rows of another company in that update, so at start-up
(:func:`install_relation_scoping`) each reverse foreign-key descriptor with a tenant model at either
end gets a class derived from its own whose ``related_manager_cls`` wraps ``add()`` with
:func:`cobee_django.guards.check_reverse_add`, which refuses them (and rows of another company
than the instance's) instead. The instance's ``__class__`` is swapped, so the descriptor keeps its
state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Manager, Model, QuerySet
from django.db.models.fields.related import ForeignObject, ManyToOneRel
from django.db.models.fields.related_descriptors import ReverseManyToOneDescriptor
from django.db.models.lookups import In, Lookup
from django.db.models.options import Options
from django.db.models.signals import class_prepared
from django.db.models.sql import Query
from django.db.models.sql.where import AND, WhereNode
from django.utils.functional import cached_property

from . import guards, state
from .company_field import COMPANY_ATTNAME, COMPANY_FIELD, is_tenant_model, unscoped_rows
from .managers import NoRows, TenantManager, TenantQuery, TenantQuerySet, same_company_condition, tenant_condition

__all__ = [
    "TenantJoinCondition",
    "TenantOptions",
    "as_tenant_queryset",
    "declared_queryset",
    "install_join_restrictions",
    "restrict_joins",
    "restricted_models",
    "scope_manager",
    "scope_tenant_model",
]

_scoped_classes: dict[tuple[type, type], type] = {}


def _rebuild(declared: type, scoped_base: type, state: dict[str, Any]) -> Any:
    """Unpickle an object of a derived class: built as ``declared``, then given the derived class back."""
    obj: Any = object.__new__(declared)
    obj.__setstate__(state)
    obj.__class__ = _derived(declared, scoped_base)
    return obj


class _ScopedQuerySetMixin:
    _cobee_declared: type

    def __reduce__(self) -> tuple[Any, ...]:
        # Derived classes are built at run time: pickle the declared class, derive again on loading.
        return (_rebuild, (self._cobee_declared, TenantQuerySet, self.__getstate__()))  # type: ignore[attr-defined]


class _ScopedQueryMixin:
    _cobee_declared: type

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._cobee_declared, TenantQuery, self.__dict__.copy()))

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _derived(declared: type, scoped_base: type) -> type:
    """``declared`` with ``scoped_base`` first in its method resolution order (built once per pair)."""
    key = (declared, scoped_base)
    if key not in _scoped_classes:
        mixin: tuple[type, ...] = ()
        if scoped_base is TenantQuerySet:
            mixin = (_ScopedQuerySetMixin,)
        elif scoped_base is TenantQuery:
            mixin = (_ScopedQueryMixin,)
        _scoped_classes[key] = type(
            f"Tenant{declared.__name__}",
            (*mixin, scoped_base, declared),
            {"__module__": declared.__module__, "_cobee_declared": declared},
        )
    return _scoped_classes[key]


def as_tenant_queryset(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """``queryset`` if it is scoped (or not over a tenant model), else a scoped copy of it.

    The copy keeps the queryset's own class (its methods still work) with :class:`TenantQuerySet`
    put first, and its query's class with :class:`TenantQuery` first.
    """
    if not is_tenant_model(queryset.model):
        return queryset
    if isinstance(queryset, TenantQuerySet) and isinstance(queryset.query, TenantQuery):
        return queryset
    scoped: QuerySet[Any] = queryset._chain()  # type: ignore[attr-defined]
    if not isinstance(scoped, TenantQuerySet):
        kind: type = type(scoped)
        scoped.__class__ = TenantQuerySet if kind is QuerySet else _derived(kind, TenantQuerySet)
    if not isinstance(scoped.query, TenantQuery):
        query_kind: type = type(scoped.query)
        scoped.query.__class__ = TenantQuery if query_kind is Query else _derived(query_kind, TenantQuery)
    return scoped


class _ScopedManagerMixin:
    """First in the class of every manager copy of a tenant model: its querysets are scoped."""

    _cobee_declared: type

    def get_queryset(self) -> QuerySet[Any]:
        return as_tenant_queryset(super().get_queryset())  # type: ignore[misc]


def _scoped_manager_class(declared: type) -> type:
    key = (declared, _ScopedManagerMixin)
    if key not in _scoped_classes:
        # Same name, qualified name and module: Manager.deconstruct() (migrations) names the declared class.
        _scoped_classes[key] = type(
            declared.__name__,
            (_ScopedManagerMixin, declared),
            {"__module__": declared.__module__, "__qualname__": declared.__qualname__, "_cobee_declared": declared},
        )
    return _scoped_classes[key]


def scope_manager(manager: Manager[Any]) -> Manager[Any]:
    """Make ``manager`` (a copy owned by one tenant model's ``_meta``) hand out scoped querysets only."""
    if not isinstance(manager, _ScopedManagerMixin):
        manager.__class__ = _scoped_manager_class(type(manager))
    return manager


def declared_queryset(manager: Manager[Any]) -> QuerySet[Any]:
    """What ``manager``'s declared class returns, before :func:`scope_manager` scopes it (for W004)."""
    declared = getattr(type(manager), "_cobee_declared", type(manager))
    queryset: QuerySet[Any] = declared.get_queryset(manager)
    return queryset


class TenantOptions(Options):  # type: ignore[type-arg]
    """The ``_meta`` of a tenant model: every manager of it, its base manager included, is scoped."""

    @cached_property
    def managers(self) -> Any:
        managers = Options.managers.func(self)  # type: ignore[attr-defined]
        for manager in managers:
            scope_manager(manager)
        return managers

    @cached_property
    def base_manager(self) -> Manager[Any]:
        manager: Manager[Any] = Options.base_manager.func(self)  # type: ignore[attr-defined]
        if not manager.auto_created:
            return scope_manager(manager)  # Meta.base_manager_name: one of the (scoped) managers
        # Like Django's own: auto-created, never listed in _meta.managers, so never in migrations.
        scoped = TenantManager()
        scoped.name = "_base_manager"
        scoped.model = self.model
        scoped.auto_created = True
        return scoped


#: The cached properties of ``Options`` that hand out managers (dropped when a model becomes a tenant model).
MANAGER_PROPERTIES = ("managers", "managers_map", "base_manager", "default_manager")


def scope_tenant_model(sender: type[Model], **kwargs: Any) -> None:
    """``class_prepared`` receiver: every manager of a tenant model, its base manager included, is scoped.

    Set at run time, not through ``Meta.base_manager_name``, so that users' migrations do not change.
    """
    if not is_tenant_model(sender) or sender._meta.abstract or isinstance(sender._meta, TenantOptions):
        return
    sender._meta.__class__ = TenantOptions
    for name in MANAGER_PROPERTIES:
        sender._meta.__dict__.pop(name, None)


class_prepared.connect(scope_tenant_model, dispatch_uid="cobee_django.scoped_managers")

# --- The join restriction ------------------------------------------------------------------------


def _scope() -> state.Tenant | None:
    """The bound tenant; ``None`` inside ``unscoped()``; raises ``NoTenantBound`` with nothing bound."""
    scope = state.require_scope()
    return scope if isinstance(scope, state.Tenant) else None


def _is_parent_link(field: ForeignObject[Any, Any]) -> bool:
    return bool(getattr(field.remote_field, "parent_link", False))


def restricted_models(field: ForeignObject[Any, Any]) -> tuple[type[Model], ...]:
    """The models at the ends of ``field`` whose tables a join through it must limit to the tenant.

    Every tenant model at either end; for a multi-table parent link, only a tenant child of a parent
    that is not a tenant model (the parent's rows hold every company's children; a tenant parent's
    row and its child's are one row, already limited wherever the join came from).
    """
    declaring: Any = field.model
    remote: Any = field.related_model
    if not isinstance(remote, type):
        return ()  # not resolved yet: nothing is compiled through it before it is
    if _is_parent_link(field):
        return (declaring,) if is_tenant_model(declaring) and not is_tenant_model(remote) else ()
    return tuple(model for model in (declaring, remote) if is_tenant_model(model))


def _table_model(model: type[Model], table: str, *, exact: bool) -> type[Model] | None:
    """``model`` (concrete) or, unless ``exact``, the multi-table ancestor whose table is ``table``."""
    concrete = model._meta.concrete_model
    assert concrete is not None
    candidates = [concrete] if exact else concrete._meta.get_parent_list()
    for candidate in candidates:
        if candidate._meta.db_table == table:
            return candidate
    return None


def _pk_chain_reaches(model: type[Model], ancestor: type[Model]) -> bool:
    """True when ``model``'s primary key values are ``ancestor``'s (its pk is a chain of parent links)."""
    current: Any = model._meta.concrete_model
    while current is not ancestor:
        pk = current._meta.pk
        if not (pk.remote_field and getattr(pk.remote_field, "parent_link", False)):
            return False
        current = pk.related_model._meta.concrete_model
    return True


def _holds_company(model: type[Model]) -> bool:
    """True when ``model``'s own table has the company column."""
    try:
        field = model._meta.get_field(COMPANY_FIELD)
    except FieldDoesNotExist:  # a plain multi-table ancestor of a tenant model
        return False
    return field.model._meta.concrete_model is model._meta.concrete_model


def table_condition(
    model: type[Model], table_model: type[Model], alias: str, tenant: state.Tenant
) -> NoRows | Lookup[Any]:
    """Limit the row at ``alias`` (a table of tenant model ``model``: its own or an ancestor's) to ``tenant``."""
    if not tenant.company_ids:
        return NoRows()
    if _holds_company(table_model) or is_tenant_model(table_model):
        return tenant_condition(table_model, alias, tenant)
    if not _pk_chain_reaches(model, table_model):
        return NoRows()  # fail closed: a second parent of a multiple-inheritance child
    # A plain multi-table ancestor of the tenant model: its row is one of the model's rows of the tenant.
    rows = unscoped_rows(model).filter(**{f"{COMPANY_ATTNAME}__in": tenant.sorted_company_ids}).values("pk")
    pk: Any = table_model._meta.pk
    return In(pk.get_col(alias), rows.query)


class TenantJoinCondition:
    """The tenant condition of one JOIN through ``field``, worked out when it is compiled.

    ``aliases`` are the two aliases Django passed to ``get_extra_restriction``, in its order (one may
    be ``None``). At compile time each alias's table, read from the compiling query, names the end of
    the relation it belongs to; each end that :func:`restricted_models` lists gets the tenant
    condition on its alias, and two tenant tables joined are also matched on their company (a
    co-located join on Citus, nothing elsewhere).
    """

    contains_aggregate = False
    contains_over_clause = False

    def __init__(self, field: ForeignObject[Any, Any], aliases: tuple[str | None, str | None]) -> None:
        self.field = field
        self.aliases = aliases

    def get_refs(self) -> set[str]:
        return set()  # (a WhereNode asks its children which annotations they reference: none)

    def replace_expressions(self, replacements: dict[Any, Any]) -> TenantJoinCondition:
        return self

    def get_group_by_cols(self) -> list[Any]:
        return []

    def relabeled_clone(self, change_map: dict[str, str]) -> TenantJoinCondition:
        aliases = tuple(None if alias is None else change_map.get(alias, alias) for alias in self.aliases)
        return TenantJoinCondition(self.field, (aliases[0], aliases[1]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TenantJoinCondition) and other.field is self.field and other.aliases == self.aliases

    def __hash__(self) -> int:
        return hash((id(self.field), self.aliases))

    def _ends(self, alias_map: Any) -> list[tuple[str, type[Model], type[Model]] | None]:
        """Per alias given: (alias, end model, model of the alias's table), or None when it matches no end."""
        ends: Any = (self.field.model, self.field.related_model)
        found: list[tuple[str, type[Model], type[Model]] | None] = []
        for alias in self.aliases:
            if alias is None:
                continue
            join = alias_map.get(alias)
            table = getattr(join, "table_name", None)
            match = None
            for exact in (True, False):  # a model's own table before an ancestor's
                for end in ends:
                    table_model = _table_model(end, table, exact=exact) if isinstance(table, str) else None
                    if table_model is not None:
                        match = (alias, end, table_model)
                        break
                if match:
                    break
            found.append(match)
        return found

    def conditions(self, alias_map: Any, tenant: state.Tenant) -> list[Any]:
        restricted = restricted_models(self.field)
        ends = self._ends(alias_map)
        if any(end is None for end in ends):
            return [NoRows()]  # fail closed: a table this relation does not explain
        conditions: list[Any] = []
        limited: list[tuple[str, type[Model]]] = []
        for alias, end, table_model in (end for end in ends if end is not None):
            if any(end is model for model in restricted):
                conditions.append(table_condition(end, table_model, alias, tenant))
                if _holds_company(table_model):
                    limited.append((alias, table_model))
        if len(limited) == 2 and not _is_parent_link(self.field):
            # Both rows in one company: the join is co-located when tables are distributed by company.
            (alias, model), (other_alias, other) = limited
            conditions.append(same_company_condition(model, alias, other, other_alias))
        if not conditions and None not in self.aliases and restricted:
            return [NoRows()]  # fail closed: a JOIN with a tenant end must carry its condition
        return conditions

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        tenant = _scope()
        if tenant is None:
            return "", []  # unscoped() when compiled (only an exclude()'s inner query is built earlier)
        conditions = self.conditions(compiler.query.alias_map, tenant)
        if not conditions:
            return "", []
        sql, params = compiler.compile(WhereNode(conditions, AND))
        return sql, list(params)


class _JoinRestriction:
    """``field.get_extra_restriction``: Django's own condition plus :class:`TenantJoinCondition`."""

    def __init__(self, field: ForeignObject[Any, Any]) -> None:
        self.field = field
        # The class's method, never the instance's: a copied field carries this object in its __dict__.
        self.original = type(field).get_extra_restriction

    def __call__(self, alias: str | None, related_alias: str | None) -> Any:
        field = self.field
        extra = self.original(field, alias, related_alias)  # type: ignore[arg-type]
        if not restricted_models(field):
            return extra
        if alias is not None and related_alias is not None and _scope() is None:
            return extra  # Join.as_sql() under unscoped(): compiled right away, nothing to add
        # Query.trim_start() builds an exclude()'s inner query now and compiles it later: the node
        # reads the tenant when it is compiled.
        children: list[Any] = [TenantJoinCondition(field, (alias, related_alias)), *([extra] if extra else [])]
        return WhereNode(children, AND)


def restrict_joins(field: ForeignObject[Any, Any]) -> None:
    """Give every JOIN through ``field`` (either direction) the tenant condition (idempotent)."""
    current = field.__dict__.get("get_extra_restriction")
    if isinstance(current, _JoinRestriction) and current.field is field:
        return
    # (A field copied with its model's private fields carries its original's: replaced here.)
    field.get_extra_restriction = _JoinRestriction(field)  # type: ignore[method-assign]


def _relations(model: type[Model]) -> Iterable[ForeignObject[Any, Any]]:
    for field in (*model._meta.local_fields, *model._meta.private_fields):
        if isinstance(field, ForeignObject):
            yield field


def restrict_model_joins(sender: type[Model], **kwargs: Any) -> None:
    """``class_prepared`` receiver: restrict the joins through each relation ``sender`` declares."""
    if sender.__module__ == "__fake__":
        return  # a migration's historical model: no tenant model, and the autodetector reads these
    for field in _relations(sender):
        restrict_joins(field)


def install_join_restrictions() -> None:
    """Restrict the joins of every model of the project (run at start-up; idempotent)."""
    for model in apps.get_models(include_auto_created=True):
        restrict_model_joins(model)


class_prepared.connect(restrict_model_joins, dispatch_uid="cobee_django.join_restriction")


class _GuardedReverseManyToOneMixin:
    rel: ManyToOneRel

    @cached_property
    def related_manager_cls(self) -> type:
        # add(bulk=True) updates the rows through the base manager, which silently skips rows outside the
        # tenant: refuse them (and rows of another company than the instance's) instead.
        base: type = super().related_manager_cls  # type: ignore[misc]

        class GuardedRelatedManager(base):  # type: ignore[misc]
            def add(self, *objs: Any, bulk: bool = True) -> None:
                guards.check_reverse_add(self.instance, self.field, objs, self.db)
                super().add(*objs, bulk=bulk)

            add.alters_data = True  # type: ignore[attr-defined]

        return GuardedRelatedManager


_guarded_descriptor_classes: dict[tuple[type, type], type] = {}


def _guarded_descriptor_class(descriptor_class: type, mixin: type) -> type:
    key = (descriptor_class, mixin)
    if key not in _guarded_descriptor_classes:
        _guarded_descriptor_classes[key] = type(f"Scoped{descriptor_class.__name__}", (mixin, descriptor_class), {})
    return _guarded_descriptor_classes[key]


def scope_model_relations(model: type[Model]) -> None:
    """Guard ``add()`` of ``model``'s reverse foreign keys that involve a tenant model.

    Forward foreign keys and reverse one-to-one accessors read through the related model's base
    manager, which is scoped for tenant models: they need nothing here.
    """
    for field in model._meta.get_fields(include_hidden=True):
        if not (isinstance(field, ManyToOneRel) and field.one_to_many):
            continue
        if not (is_tenant_model(model) or is_tenant_model(field.related_model)):
            continue
        reverse = model.__dict__.get(field.get_accessor_name() or "")
        if type(reverse) is ReverseManyToOneDescriptor:
            reverse.__class__ = _guarded_descriptor_class(type(reverse), _GuardedReverseManyToOneMixin)


def install_relation_scoping() -> None:
    """Guard ``add()`` of every reverse foreign key of the project that leads to a tenant model (run at startup)."""
    for model in apps.get_models(include_auto_created=True):
        scope_model_relations(model)
