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
"""

from __future__ import annotations

from typing import Any

from django.db.models import Manager, Model, QuerySet
from django.db.models.options import Options
from django.db.models.signals import class_prepared
from django.db.models.sql import Query
from django.utils.functional import cached_property

from .company_field import is_tenant_model
from .managers import TenantManager, TenantQuery, TenantQuerySet

__all__ = [
    "TenantOptions",
    "as_tenant_queryset",
    "declared_queryset",
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
