"""The Django internals ``cobee_django._django`` overrides (and the ``extra()`` refusal relies on) still look
as it assumes (run on every Django in CI): a release that changes one fails here, loudly, instead of quietly
unscoping a manager or a join.
"""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path

import django
import pytest
from django.contrib.contenttypes.fields import GenericRelation
from django.db.models import Manager, QuerySet
from django.db.models.fields.related import ForeignObject
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.db.models.lookups import Exact
from django.db.models.manager import BaseManager
from django.db.models.options import Options
from django.db.models.sql import Query
from django.db.models.sql.where import AND, WhereNode
from django.utils.functional import cached_property

from cobee_django import _django, state
from cobee_django._django import MANAGER_PROPERTIES, TenantOptions
from cobee_django.managers import TenantManager
from cobee_django.models import TenantModel
from tests.testapp.models import Department, Employee, Project
from tests.zooapp.models import Child, Feed, Owner


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


# --- the join restriction

DJANGO_DIR = Path(django.__file__).parent


def parameters(function):
    return list(inspect.signature(function).parameters)


def test_the_hook_has_the_signature_assumed():
    assert parameters(ForeignObject.get_extra_restriction) == ["self", "alias", "related_alias"]
    assert parameters(ForeignObjectRel.get_extra_restriction) == ["self", "alias", "related_alias"]
    # contenttypes' own restriction puts its condition on the *second* alias: the order is the field's.
    assert parameters(GenericRelation.get_extra_restriction) == ["self", "alias", "remote_alias"]


def callers_of_the_hook():
    """(module, function) of every call of ``get_extra_restriction`` in Django's source.

    A text scan, not ``ast``: Python 3.11's parser can fail after an earlier RecursionError in the
    same process (the layers test meets that), and the calls are plain to see.
    """
    found = set()
    for source in DJANGO_DIR.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        if "get_extra_restriction(" not in text:
            continue
        function = None
        for line in text.splitlines():
            definition = re.match(r"\s*def (\w+)\(", line)
            if definition:
                function = definition.group(1)
            elif ".get_extra_restriction(" in line:
                found.add((source.relative_to(DJANGO_DIR).as_posix(), function))
    return found


def test_django_calls_the_hook_from_the_places_assumed():
    # Join.as_sql() while compiling a JOIN; Query.trim_start() while building an exclude()'s inner
    # query; ForeignObjectRel delegating to its field. A new caller must be reviewed in _django.py.
    assert callers_of_the_hook() == {
        ("db/models/sql/datastructures.py", "as_sql"),
        ("db/models/sql/query.py", "trim_start"),
        ("db/models/fields/reverse_related.py", "get_extra_restriction"),
    }


class Recorder:
    def __init__(self, field):
        self.field = field
        self.calls = []

    def __call__(self, alias, related_alias):
        self.calls.append((alias, related_alias))


@pytest.fixture
def record(monkeypatch):
    def install(field):
        recorder = Recorder(field)
        monkeypatch.setitem(field.__dict__, "get_extra_restriction", recorder)
        return recorder

    return install


def compiled_aliases(queryset):
    compiler = queryset.query.get_compiler(using=queryset.db)
    compiler.as_sql()
    return compiler.query.alias_map


def test_a_reverse_relation_asks_its_field_with_the_aliases_swapped(record):
    field = Child._meta.get_field("owner")
    recorder = record(field)
    field.remote_field.get_extra_restriction("joined", "parent")
    assert recorder.calls == [("parent", "joined")]


@pytest.mark.django_db
def test_a_join_passes_both_aliases_of_the_compiling_query(record):
    """The contract _django relies on: two aliases of the query's alias_map, never an order."""
    fk = record(Child._meta.get_field("owner"))
    generic = record(Owner._meta.get_field("feeds"))
    with state.unscoped():
        fk_aliases = compiled_aliases(QuerySet(model=Child).values("owner__tag"))
        generic_aliases = compiled_aliases(QuerySet(model=Feed).values("owner__tag"))
    [(alias, related_alias)] = fk.calls
    assert {fk_aliases[alias].table_name, fk_aliases[related_alias].table_name} == {"zoo_owner", "zoo_child"}
    [(alias, related_alias)] = generic.calls
    assert {generic_aliases[alias].table_name, generic_aliases[related_alias].table_name} == {"zoo_owner", "zoo_feed"}
    # The two kinds pass them in opposite orders (the bug of issue 20): hence the table lookup.
    assert fk_aliases[fk.calls[0][0]].table_name == "zoo_owner"
    assert generic_aliases[generic.calls[0][0]].table_name == "zoo_owner"
    assert Child._meta.get_field("owner").related_model is Owner
    assert Owner._meta.get_field("feeds").related_model is Feed


@pytest.mark.django_db
def test_an_excludes_inner_query_passes_none_for_the_trimmed_table(record):
    recorder = record(Owner._meta.get_field("children").field)  # Child.owner, seen from Owner
    with state.unscoped():
        list(QuerySet(model=Owner).exclude(children__tag="x"))
    assert recorder.calls[0][0] is None and isinstance(recorder.calls[0][1], str)


def test_an_empty_child_of_a_where_node_matches_everything():
    class Empty:
        contains_aggregate = False

        def as_sql(self, compiler, connection):
            return "", []

    query = Query(Owner)
    compiler = query.get_compiler(using="default")
    column = Owner._meta.get_field("tag").get_col(query.get_initial_alias())
    sql, params = compiler.compile(WhereNode([Empty(), Exact(column, "x")], AND))
    assert params == ["x"] and sql.count("%s") == 1


def test_a_copied_field_carries_the_instance_attribute():
    # Model inheritance copies private fields (a GenericRelation) with copy.copy: the restriction of
    # the copy must be its own, which restrict_joins() ensures.
    field = Owner._meta.get_field("feeds")
    _django.restrict_joins(field)
    copied = copy.copy(field)
    assert copied.__dict__["get_extra_restriction"] is field.__dict__["get_extra_restriction"]
    _django.restrict_joins(copied)
    assert copied.get_extra_restriction.field is copied


def test_every_zoo_relation_is_restricted_including_inherited_copies():
    from tests.zooapp.models import Sub

    inherited = Sub._meta.get_field("feeds")
    assert inherited is not Owner._meta.get_field("feeds")
    assert inherited.get_extra_restriction.field is inherited
    assert Owner.peers.through._meta.get_field("to_owner").get_extra_restriction.field.model is Owner.peers.through


def test_the_query_attributes_of_extra_exist():
    query = Query(Owner)
    assert query.extra == {} and query.extra_tables == () and query.extra_order_by == ()


def test_reverse_foreign_key_descriptors_build_their_manager_in_a_cached_property_with_a_bulk_add():
    from django.db.models.fields.related_descriptors import (
        ReverseManyToOneDescriptor,
        create_reverse_many_to_one_manager,
    )

    assert isinstance(inspect.getattr_static(ReverseManyToOneDescriptor, "related_manager_cls"), cached_property)
    assert "create_reverse_many_to_one_manager" in inspect.getsource(ReverseManyToOneDescriptor)
    rel = Employee._meta.get_field("department").remote_field
    add = inspect.signature(create_reverse_many_to_one_manager(Manager, rel).add)
    assert "bulk" in add.parameters and add.parameters["bulk"].default is True
    # The accessor is a class attribute: _django swapped its class for the guarded one.
    descriptor = Department.__dict__[rel.get_accessor_name()]
    assert isinstance(descriptor, ReverseManyToOneDescriptor) and type(descriptor) is not ReverseManyToOneDescriptor
