"""Moves through the relation zoo: every kind of reference to a moving row stops it, and references
that end inside the new company (rows moving together, or an old reference already pointing there)
do not.

Moving rows between companies cannot hold on Citus by design (a row lives on its company's shard):
the whole module is skipped there, like the other move tests.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import transaction
from django.db.models import QuerySet

from cobee_django import state
from cobee_django.exceptions import TenantViolation
from tests.zooapp.models import Card, Child, Group, Membership, Owner

pytestmark = pytest.mark.usefixtures("not_on_citus")

Peers = Owner.peers.through


@pytest.fixture
def zoo(tenants):
    """In company a: the owner that moves, and an owner it does not reference; in company b, an owner."""
    with state.unscoped():
        made = SimpleNamespace(**vars(tenants))
        made.moving = Owner.objects.create(company_id=tenants.a, tag="a:moving", code="moving")
        made.other = Owner.objects.create(company_id=tenants.a, tag="a:other", code="other")
        made.far = Owner.objects.create(company_id=tenants.b, tag="b:far", code="far")
    return made


def _update(pk, company):
    return Owner.objects.filter(pk=pk).update(company_id=company)


def _save(pk, company):
    owner = Owner.objects.get(pk=pk)
    owner.company_id = company
    owner.save()


def _bulk_update(pk, company):
    owner = Owner.objects.get(pk=pk)
    owner.company_id = company
    Owner.objects.bulk_update([owner], ["company"])


WRITES = {"update()": _update, "save()": _save, "bulk_update()": _bulk_update}


def _pointing_child(zoo):
    Child.objects.create(company_id=zoo.a, tag="a:child", owner=zoo.moving)


def _pointing_card(zoo):
    Card.objects.create(company_id=zoo.a, tag="a:card", owner=zoo.moving)


def _membership(zoo):
    group = Group.objects.create(company_id=zoo.a, tag="a:group")
    Membership.objects.create(company_id=zoo.a, tag="a:membership", group=group, owner=zoo.moving)


def _peer_of(zoo):
    zoo.other.peers.add(zoo.moving)


def _peering(zoo):
    zoo.moving.peers.add(zoo.other)


REFERRERS = {
    "a foreign key to it": _pointing_child,
    "a one-to-one to it": _pointing_card,
    "an explicit through row": _membership,
    "a many-to-many link to it": _peer_of,
    "its many-to-many link": _peering,
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize("referrer", REFERRERS.values(), ids=REFERRERS.keys())
def test_every_kind_of_reference_to_a_moving_owner_stops_it(zoo, referrer, write):
    with state.unscoped():
        referrer(zoo)
    with state.for_corporation(zoo.corp), pytest.raises(TenantViolation), transaction.atomic():
        write(zoo.moving.pk, zoo.b)
    with state.unscoped():
        assert Owner.objects.get(pk=zoo.moving.pk).company_id == zoo.a


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_free_owner_moves(zoo, write):
    with state.for_corporation(zoo.corp):
        write(zoo.moving.pk, zoo.b)
    with state.unscoped():
        assert Owner.objects.get(pk=zoo.moving.pk).company_id == zoo.b


def test_linked_owners_moving_together_keep_their_link_inside_one_company(zoo):
    with state.unscoped():
        zoo.moving.peers.add(zoo.other)
    with state.for_corporation(zoo.corp):
        assert Owner.objects.filter(pk__in=[zoo.moving.pk, zoo.other.pk]).update(company_id=zoo.b) == 2
    with state.unscoped():
        assert set(Owner.objects.filter(peers=zoo.other).values_list("company_id", flat=True)) == {zoo.b}


# References written before the guards (here by a plain queryset, which no guard sees) that point
# across companies: moving the row into the company at the other end heals them, and is allowed.


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_an_owner_moves_to_the_company_of_an_old_row_pointing_at_it(zoo, write):
    with state.unscoped():
        child = Child.objects.create(company_id=zoo.b, tag="b:child")
    QuerySet(model=Child).filter(pk=child.pk).update(owner_id=zoo.moving.pk)
    with state.for_corporation(zoo.corp):
        write(zoo.moving.pk, zoo.b)
        with pytest.raises(TenantViolation), transaction.atomic():
            write(zoo.moving.pk, zoo.a)  # and back is refused: the child stays in b
    with state.unscoped():
        assert Owner.objects.get(pk=zoo.moving.pk).company_id == zoo.b


def test_an_owner_moves_to_the_company_of_an_old_peer(zoo):
    with state.unscoped():
        Peers.objects.create(from_owner_id=zoo.moving.pk, to_owner_id=zoo.far.pk)
    with state.for_corporation(zoo.corp):
        assert _update(zoo.moving.pk, zoo.b) == 1


def test_a_row_moves_to_the_company_its_old_foreign_key_points_at(zoo):
    with state.unscoped():
        child = Child.objects.create(company_id=zoo.a, tag="a:child")
    QuerySet(model=Child).filter(pk=child.pk).update(owner_id=zoo.far.pk)
    with state.for_corporation(zoo.corp):
        assert Child.objects.filter(pk=child.pk).update(company_id=zoo.b) == 1
        with pytest.raises(TenantViolation), transaction.atomic():
            Child.objects.filter(pk=child.pk).update(company_id=zoo.a)


def test_a_through_row_moving_with_one_end_rewritten_is_still_stopped_by_the_other(zoo):
    with state.unscoped():
        group = Group.objects.create(company_id=zoo.a, tag="a:group")
        far_group = Group.objects.create(company_id=zoo.b, tag="b:group")
        membership = Membership.objects.create(company_id=zoo.a, tag="a:m", group=group, owner=zoo.moving)
    with state.for_corporation(zoo.corp):
        rows = Membership.objects.filter(pk=membership.pk)
        with pytest.raises(TenantViolation, match=r"their owner is a row of another company"), transaction.atomic():
            rows.update(company_id=zoo.b, group=far_group)
        QuerySet(model=Membership).filter(pk=membership.pk).update(owner=zoo.far)  # an old reference to b
        assert rows.update(company_id=zoo.b, group=far_group) == 1
