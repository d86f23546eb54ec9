"""Joins stay inside the tenant through every relation kind, both ways, for every pairing of models.

The cases are generated (tests/zooapp/paths.py): every lookup path of one or two hops through the
zoo of tenant and plain models, run under company ``a`` as a filter, ``values_list()``,
``exclude()``, ``annotate()``/``aggregate()``, through a ``FilteredRelation`` and, where Django can
follow the path that way, ``select_related()`` and ``prefetch_related()``. The data links every
row both inside its company and, through corrupt writes only raw SQL or a plain queryset could
make, to the other company's rows. Under ``a`` no value of ``b`` may be visible or answerable, the
values seen must be exactly those reachable through ``a``'s rows (an oracle walks the links one hop
at a time), and no path may fail (a plain model without a company column included).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import django
import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db.models import Count, FilteredRelation, Max, Q, QuerySet

from cobee_django import state
from cobee_django.company_field import is_tenant_model
from tests.zooapp.models import (
    Activity,
    Card,
    Child,
    Club,
    ClubMembership,
    Feed,
    Group,
    Heir,
    Membership,
    Notice,
    Owner,
    Plain,
    PlainCard,
    PlainRef,
    Ref,
    Sub,
)
from tests.zooapp.paths import Path, every_path, zoo_models

PATHS = every_path(max_hops=2)
OTHER = "b:"


def plain_create(model, **fields):
    """Insert one row past the write guards (a corrupt link the guards would refuse)."""
    return QuerySet(model=model).bulk_create([model(**fields)])[0]


def world(key, company):
    """One company's rows, every relation filled inside the company."""
    t = f"{key}:"
    w = SimpleNamespace()
    w.owner = Owner.objects.create(company_id=company, tag=f"{t}owner", code="o1")
    w.owner2 = Owner.objects.create(company_id=company, tag=f"{t}owner2", code="o2", mentor=w.owner)
    w.sub = Sub.objects.create(company_id=company, tag=f"{t}sub", code="s1", sub_tag=f"{t}sub-own")
    # A tenant child of a plain parent: its Base row (tag) is plain, its own column (heir_tag) is a's.
    w.heir = Heir.objects.create(company_id=company, tag=f"p:base-{key}", heir_tag=f"{t}heir")
    w.plain = Plain.objects.create(tag=f"p:plain-{key}", owner=w.owner, sub=w.sub, heir=w.heir)
    Child.objects.create(company_id=company, tag=f"{t}child", owner=w.owner, plain=w.plain)
    Card.objects.create(company_id=company, tag=f"{t}card", owner=w.owner, plain=w.plain)
    PlainCard.objects.create(tag=f"p:plaincard-{key}", owner=w.owner)
    w.group = Group.objects.create(company_id=company, tag=f"{t}group")
    Membership.objects.create(company_id=company, tag=f"{t}membership", group=w.group, owner=w.owner)
    w.club = Club.objects.create(tag=f"p:club-{key}", code="c", kind=key)
    ClubMembership.objects.create(tag=f"p:clubmembership-{key}", club=w.club, owner=w.owner)
    Ref.objects.create(company_id=company, tag=f"{t}ref", code="o1", club_code="c", club_kind=key)
    PlainRef.objects.create(tag=f"p:plainref-{key}", owner_company_id=company, code="o1")
    Feed.objects.create(tag=f"p:feed-{key}", company_id=company, target=w.owner)
    Activity.objects.create(tag=f"p:activity-{key}", target=w.owner)
    Activity.objects.create(tag=f"p:plainactivity-{key}", target=w.plain)
    Notice.objects.create(company_id=company, tag=f"{t}notice", target=w.owner)
    Notice.objects.create(company_id=company, tag=f"{t}plainnotice", target=w.plain)
    Notice.objects.create(company_id=company, tag=f"{t}subnotice", target=w.sub)
    w.owner.peers.add(w.owner2)
    w.owner.plains.add(w.plain)
    return w


def cross(key, company, mine, theirs):
    """Rows of ``key`` (or plain rows) pointing at the other company's rows, by every relation."""
    t = f"{key}:"
    owner_ct = ContentType.objects.get_for_model(Owner)
    plain_create(Plain, tag=f"p:crossplain-{key}", owner=theirs.owner2, sub=theirs.sub, heir=theirs.heir)
    plain_create(Child, company_id=company, tag=f"{t}crosschild", owner=theirs.owner2, plain=mine.plain)
    QuerySet(model=Owner).filter(pk=mine.owner.pk).update(mentor=theirs.owner2)
    plain_create(Card, company_id=company, tag=f"{t}crosscard", owner=theirs.owner2)
    plain_create(PlainCard, tag=f"p:crossplaincard-{key}", owner=theirs.owner2)
    plain_create(Membership, company_id=company, tag=f"{t}crossmembership", group=mine.group, owner=theirs.owner2)
    plain_create(ClubMembership, tag=f"p:crossclubmembership-{key}", club=mine.club, owner=theirs.owner2)
    plain_create(PlainRef, tag=f"p:crossplainref-{key}", owner_company_id=theirs.company, code="o2")
    plain_create(Feed, tag=f"p:crossfeed-{key}", company_id=company, content_type=owner_ct, object_id=theirs.owner2.pk)
    plain_create(Activity, tag=f"p:crossactivity-{key}", content_type=owner_ct, object_id=theirs.owner2.pk)
    plain_create(Notice, company_id=company, tag=f"{t}crossnotice", content_type=owner_ct, object_id=theirs.owner2.pk)
    Owner.peers.through.objects.bulk_create([Owner.peers.through(from_owner=mine.owner, to_owner=theirs.owner2)])
    Owner.plains.through.objects.bulk_create([Owner.plains.through(owner=theirs.owner2, plain=mine.plain)])


@pytest.fixture
def zoo(tenants):
    with state.unscoped():
        a, b = world("a", tenants.a), world("b", tenants.b)
        a.company, b.company = tenants.a, tenants.b
        cross("a", tenants.a, a, b)
        cross("b", tenants.b, b, a)
    return SimpleNamespace(a=tenants.a, b=tenants.b, corp=tenants.corp)


class Oracle:
    """What company ``a`` may see along a path: the links walked one hop at a time, unscoped,
    keeping plain rows and ``a``'s tenant rows only."""

    def __init__(self, company):
        self.company = company
        self.links = {}

    def visible(self, model, pks):
        rows = QuerySet(model=model).filter(pk__in=pks)
        if is_tenant_model(model):
            rows = rows.filter(company_id=self.company)
        return set(rows.values_list("pk", flat=True))

    def hop(self, model, pk, name):
        key = (model, pk, name)
        if key not in self.links:
            self.links[key] = set(QuerySet(model=model).filter(pk=pk).values_list(f"{name}__pk", flat=True)) - {None}
        return self.links[key]

    def values(self, path: Path):
        with state.unscoped():
            model, pks = path.model, set(QuerySet(model=path.model).values_list("pk", flat=True))
            pks = self.visible(model, pks)
            for hop in path.hops:
                reached = set().union(*(self.hop(model, pk, hop.name) for pk in pks)) if pks else set()
                model, pks = hop.target, self.visible(hop.target, reached)
            return set(QuerySet(model=model).filter(pk__in=pks).values_list(path.leaf, flat=True))


def leaked(values):
    return sorted(str(v) for v in values if isinstance(v, str) and not v.startswith(("a:", "p:")))


def related_tags(obj, hops, leaf):
    """Walk ``obj``'s related objects (as select_related/prefetch_related cached them)."""
    objs = [obj]
    for hop in hops:
        following = []
        for current in objs:
            try:
                value = getattr(current, hop.name if not hop.many else accessor(current, hop))
            except Exception as exc:
                if type(exc).__name__ != "RelatedObjectDoesNotExist" and not isinstance(exc, hop.target.DoesNotExist):
                    raise
                continue
            if hasattr(value, "all"):  # a related manager (the reverse of a generic relation is one too)
                following.extend(value.all())
            elif value is not None:
                following.append(value)
        objs = following
    return {getattr(o, leaf) for o in objs}


def accessor(obj, hop):
    field = type(obj)._meta.get_field(hop.name)
    return field.get_accessor_name() if hasattr(field, "get_accessor_name") else field.name


def check_path(path: Path, oracle: Oracle) -> list[str]:
    """Every way to run ``path`` under company a; the problems found, as readable lines."""
    problems = []
    model, lookup = path.model, path.lookup
    manager = model._default_manager

    def expect(what, condition):
        if not condition:
            problems.append(f"{path}: {what}")

    try:
        seen = set(manager.values_list(lookup, flat=True)) - {None}
        expect(f"values_list shows {leaked(seen)}", not leaked(seen))
        expected = oracle.values(path)
        expect(f"values_list {sorted(seen)} != reachable {sorted(expected)}", seen == expected)
        expect("filter answers yes about b", not manager.filter(**{f"{lookup}__startswith": OTHER}).exists())
        # (A row whose single-valued link crosses companies drops out of any filter over it: INNER JOIN.)
        kept = manager.exclude(**{f"{lookup}__startswith": "no such value"}).count()
        expect(
            "exclude removes rows for b's values", manager.exclude(**{f"{lookup}__startswith": OTHER}).count() == kept
        )
        top = manager.aggregate(top=Max(lookup), n=Count(lookup, filter=Q(**{f"{lookup}__startswith": OTHER})))
        expect(f"aggregate {top}", top["n"] == 0 and not leaked([top["top"]]))
        annotated = set(manager.annotate(top=Max(lookup)).values_list("top", flat=True))
        expect(f"annotate shows {leaked(annotated)}", not leaked(annotated))
        first, *rest = path.hops
        if first.many:
            condition = Q(**{f"{first.name}__pk__isnull": False})
            filtered = manager.annotate(via=FilteredRelation(first.name, condition=condition))
            tail = "__".join([*(hop.name for hop in rest), path.leaf])
            shown = set(filtered.values_list(f"via__{tail}", flat=True)) - {None}
            expect(f"FilteredRelation shows {leaked(shown)}", not leaked(shown))
        if all(hop.selectable for hop in path.hops):
            tags = set().union(*(related_tags(o, path.hops, path.leaf) for o in manager.select_related(path.relation)))
            expect(f"select_related shows {leaked(tags)}", not leaked(tags))
        if django.VERSION < (5, 0) and any(hop.kind == "GenericRel" for hop in path.hops):
            return problems  # Django 4.2 cannot prefetch the reverse of a generic relation at all (AttributeError)
        tags = set().union(*(related_tags(o, path.hops, path.leaf) for o in manager.prefetch_related(path.relation)))
        expect(f"prefetch_related shows {leaked(tags)}", not leaked(tags))
        expect(f"prefetch_related {sorted(tags)} != reachable {sorted(expected)}", tags == expected)
    except Exception as exc:
        problems.append(f"{path}: {type(exc).__name__}: {exc}")
    return problems


@pytest.mark.parametrize("model", zoo_models(), ids=lambda model: model.__name__)
def test_every_path_through_the_zoo_stays_inside_the_tenant(zoo, model):
    paths = [path for path in PATHS if path.model is model]
    assert paths, f"no path from {model.__name__}"
    oracle = Oracle(zoo.a)
    with state.for_company(zoo.a):
        problems = [problem for path in paths for problem in check_path(path, oracle)]
    assert problems == [], "\n".join(problems)


def test_the_zoo_covers_every_relation_kind_and_pairing():
    kinds = defaultdict(set)
    for path in PATHS:
        hop = path.hops[0]
        field = path.model._meta.get_field(hop.name)
        pairing = ("T" if is_tenant_model(path.model) else "P") + ("T" if is_tenant_model(hop.target) else "P")
        kinds[type(field).__name__].add(pairing)
    every = {"TT", "TP", "PT"}  # tenant/plain model declaring the relation or starting the lookup, then the other end
    for kind in (
        "ForeignKey",
        "ManyToOneRel",
        "OneToOneField",
        "OneToOneRel",
        "ManyToManyField",
        "ManyToManyRel",
        "ForeignObject",
        "ForeignObjectRel",
        "GenericRelation",
        "GenericRel",
    ):
        assert kinds[kind] >= every, (kind, kinds[kind])
    parent_links = {
        f.model for m in zoo_models() for f in m._meta.local_fields if getattr(f.remote_field, "parent_link", 0)
    }
    assert parent_links == {Sub, Heir}  # a tenant child of a tenant model, and of a plain one
    through = {f.remote_field.through._meta.auto_created for m in zoo_models() for f in m._meta.local_many_to_many}
    assert through == {Owner, False}  # auto-created (Owner.peers, Owner.plains) and explicit ones
    assert len(PATHS) > 500


def test_generic_foreign_keys_reach_only_the_tenants_rows(zoo):
    with state.for_company(zoo.a):
        for model in (Feed, Activity, Notice):
            for rows in (model.objects.all(), model.objects.prefetch_related("target")):
                targets = {row.tag: row.target for row in rows}
                shown = [getattr(t, "tag", None) for t in targets.values() if t is not None]
                assert not leaked(shown), (model.__name__, shown)
                assert any(tag.startswith("a:owner") for tag in shown if tag) or model is Notice
        # The reproduction: a plain feed with a company column, read through the relation.
        assert set(Feed.objects.values_list("owner__tag", flat=True)) == {"a:owner", "a:owner2", None}
        assert not Feed.objects.filter(owner__tag="b:owner").exists()
        assert not Activity.objects.filter(owner__tag__startswith="b:").exists()


def test_a_plain_model_without_a_company_column_joins_without_error(zoo):
    with state.for_company(zoo.a):
        assert sorted(Activity.objects.filter(owner__isnull=False).values_list("owner__tag", flat=True)) == [
            "a:owner",
            "a:owner2",
        ]
        assert sorted(Owner.objects.values_list("activities__tag", flat=True).exclude(activities=None)) == [
            "p:activity-a",
            "p:crossactivity-b",
        ]


def test_an_exclude_across_a_relation_reads_the_tenant_when_it_runs(zoo):
    # Django builds an exclude()'s inner query at once (Query.trim_start): its join restriction is
    # still worked out when the query runs, for whoever runs it, and building it needs no tenant.
    built_unbound = Owner.objects.exclude(children__tag__startswith="b:")
    with state.for_company(zoo.a):
        built_under_a = Plain.objects.exclude(owner__children__tag__startswith="a:")
        assert sorted(built_unbound.values_list("tag", flat=True)) == ["a:owner", "a:owner2", "a:sub"]
    with state.for_company(zoo.b):
        assert sorted(built_unbound.values_list("tag", flat=True)) == ["b:owner2", "b:sub"]  # b:owner has b:child
        assert sorted(built_under_a.values_list("tag", flat=True)) == sorted(
            Plain.objects.exclude(owner__children__tag__startswith="a:").values_list("tag", flat=True)
        )


@pytest.mark.skipif(
    django.VERSION < (5, 0),
    reason="Django 4.2 writes a ForeignObject's from_fields and to_fields as tuples, 5.x as lists: one schema",
)
def test_the_zoo_migrations_are_complete(db):
    call_command("makemigrations", "zoo", "--check", "--dry-run", verbosity=0)
