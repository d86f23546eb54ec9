"""The write guards through the relation zoo's models.

Moves: every kind of reference to a moving row stops it, and references that end inside the new
company (rows moving together, or an old reference already pointing there) do not. Then the
reference checks of saves, bulk creates and links, each where the order of fields, rows or checks
matters.

Moving rows between companies cannot hold on Citus by design (a row lives on its company's shard):
the module is skipped there; its other checks run on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from cobee_django import state
from cobee_django.exceptions import TenantViolation
from tests.zooapp.models import Card, Child, Group, Membership, Owner, Plain

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


@contextmanager
def refused(match=None):
    # A savepoint around the refused write keeps the test's transaction usable.
    with pytest.raises(TenantViolation, match=match), transaction.atomic():
        yield


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
    with state.for_corporation(zoo.corp), refused():
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
        with refused():
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
        with refused():
            Child.objects.filter(pk=child.pk).update(company_id=zoo.a)


def test_a_through_row_moving_with_one_end_rewritten_is_still_stopped_by_the_other(zoo):
    with state.unscoped():
        group = Group.objects.create(company_id=zoo.a, tag="a:group")
        far_group = Group.objects.create(company_id=zoo.b, tag="b:group")
        membership = Membership.objects.create(company_id=zoo.a, tag="a:m", group=group, owner=zoo.moving)
    with state.for_corporation(zoo.corp):
        rows = Membership.objects.filter(pk=membership.pk)
        with refused(r"their owner is a row of another company"):
            rows.update(company_id=zoo.b, group=far_group)
        QuerySet(model=Membership).filter(pk=membership.pk).update(owner=zoo.far)  # an old reference to b
        assert rows.update(company_id=zoo.b, group=far_group) == 1


# --- reference checks where order matters -------------------------------------------------------------


def test_a_save_of_some_fields_checks_each_reference_it_writes(zoo):
    with state.unscoped():
        group = Group.objects.create(company_id=zoo.a, tag="a:group")
        membership = Membership.objects.create(company_id=zoo.a, tag="a:m", group=group, owner=zoo.moving)
    with state.for_corporation(zoo.corp):
        membership = Membership.objects.get(pk=membership.pk)
        membership.owner_id = zoo.far.pk  # the second reference field; the first is not written
        with refused(r"zoo\.Membership\.owner must point at a row of the same company"):
            membership.save(update_fields=["owner"])


@pytest.mark.parametrize(
    "first",
    [pytest.param(None, id="an empty reference"), pytest.param(10**9, id="a reference to no row")],
)
def test_every_row_of_a_bulk_create_is_checked_after_one_that_needs_no_check(zoo, first):
    with state.for_company(zoo.a), refused():
        Child.objects.bulk_create([Child(tag="a:first", owner_id=first), Child(tag="a:second", owner_id=zoo.far.pk)])
    with state.unscoped():
        assert not Child.objects.exists()


def test_an_instance_built_by_hand_is_checked_in_the_database(zoo):
    forged = Owner(pk=zoo.far.pk, company_id=zoo.a, tag="a:forged", code="far")
    forged._state.adding = False  # it claims to be a saved row of company a; the row is b's
    with state.for_company(zoo.a), refused():
        Child.objects.create(tag="a:child", owner=forged)
    with state.for_corporation(zoo.corp):
        moved_in_memory = Owner.objects.get(pk=zoo.far.pk)
        moved_in_memory.company_id = zoo.a  # not saved: the row is still b's
        with refused():
            Child.objects.create(company_id=zoo.a, tag="a:child", owner=moved_in_memory)
        with refused():
            Child.objects.bulk_create([Child(company_id=zoo.a, tag="a:bulk", owner=moved_in_memory)])
        loaded = Owner.objects.get(pk=zoo.moving.pk)
        loaded.company_id = zoo.b  # not saved: the row is still a's, so a child of a may point at it
        Child.objects.create(company_id=zoo.a, tag="a:child", owner=loaded)


def test_a_reference_to_a_row_loaded_in_the_tenant_costs_no_lookup(zoo):
    with state.for_company(zoo.a):
        owner = Owner.objects.get(pk=zoo.moving.pk)
        with CaptureQueriesContext(connection) as captured:
            Child.objects.create(tag="a:child", owner=owner)
            Child.objects.bulk_create([Child(tag="a:bulk", owner=owner)])
    table = Owner._meta.db_table
    assert not [q["sql"] for q in captured.captured_queries if table in q["sql"]]


def test_a_link_from_a_row_outside_the_tenant_is_refused_even_to_rows_of_a_plain_model(zoo):
    with state.unscoped():
        plain = Plain.objects.create(tag="p:plain")
        far = Owner.objects.get(pk=zoo.far.pk)
    with state.for_company(zoo.a), refused(r"cannot be written to company"):
        far.plains.add(plain)
    with state.unscoped():
        assert not far.plains.exists()


def test_a_refused_many_to_many_link_names_the_model(zoo):
    with state.for_corporation(zoo.corp), refused(r"^A zoo\.Owner link must point at rows of the same company\.$"):
        zoo.moving.peers.add(zoo.far)


# --- a row pointing at a row of its own model ----------------------------------------------------------


def test_an_owner_and_its_mentor_move_together_but_not_apart(zoo):
    with state.unscoped():
        Owner.objects.filter(pk=zoo.other.pk).update(mentor=zoo.moving)
    with state.for_corporation(zoo.corp):
        for pk in (zoo.moving.pk, zoo.other.pk):  # the mentor alone, then the mentee alone
            with refused(r"zoo\.Owner rows cannot change company while"):
                _update(pk, zoo.b)
        assert Owner.objects.filter(pk__in=[zoo.moving.pk, zoo.other.pk]).update(company_id=zoo.b) == 2
        mentee = Owner.objects.get(pk=zoo.other.pk)
        assert (mentee.company_id, mentee.mentor_id) == (zoo.b, zoo.moving.pk)
