"""The Django internals ``cobee_django._django`` overrides still look as it assumes (run on every Django in CI)."""

from __future__ import annotations

import inspect

from django.db.models import Manager
from django.db.models.manager import BaseManager
from django.db.models.options import Options
from django.utils.functional import cached_property

from cobee_django._django import MANAGER_PROPERTIES, TenantOptions
from cobee_django.managers import TenantManager
from cobee_django.models import TenantModel
from tests.testapp.models import Department, Employee, Project


def test_options_hands_out_managers_through_cached_properties_the_cache_expiry_drops():
    for name in MANAGER_PROPERTIES:
        assert isinstance(inspect.getattr_static(Options, name), cached_property), name
        # _expire_cache() (apps.clear_cache(), add_manager()) drops them: TenantOptions rebuilds them.
        assert name in Options.FORWARD_PROPERTIES, name


def test_options_managers_copies_each_declared_manager_for_the_model():
    assert isinstance(Department._meta, TenantOptions)
    declared = next(m for m in TenantModel._meta.local_managers if m.name == "objects")  # the abstract parent's
    copies = {m.name: m for m in Department._meta.managers}
    assert copies["objects"] is not declared  # a copy: changing its class leaves the declared one alone
    assert type(declared) is TenantManager
    assert copies["objects"].model is Department
    # The descriptor and _default_manager hand out the copies in managers_map.
    assert Department.objects is Department._meta.managers_map["objects"]
    assert Department._default_manager is copies["objects"]


def test_options_base_manager_is_a_managers_map_entry_or_an_auto_created_manager():
    source = inspect.getsource(Options.base_manager.func)
    assert "self.managers_map[base_manager_name]" in source
    assert "auto_created = True" in source


def test_manager_methods_and_related_managers_go_through_get_queryset():
    source = inspect.getsource(BaseManager._get_queryset_methods)
    assert "self.get_queryset()" in source
    # Related managers derive from the related model's default manager's class.
    department = Department(pk=1, company_id=None)
    assert isinstance(department.employees, type(Employee._default_manager))
    assert isinstance(Employee(pk=1).projects, type(Project._default_manager))
    assert isinstance(Project(pk=1).members, type(Employee._default_manager))


def test_manager_deconstruct_names_the_class_by_its_name_and_module():
    source = inspect.getsource(Manager.deconstruct)
    assert "self.__class__.__name__" in source
    assert "self.__module__" in source
