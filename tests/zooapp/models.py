"""A zoo of tenant and plain models linked by every relation kind Django joins through.

Every model has a ``tag``: a tenant row's starts with its company's key (``a:``, ``b:``), a plain
row's with ``p:``. tests/test_relation_zoo.py walks every lookup path through these models and
asserts that no ``b:`` value is ever visible or answerable under company ``a``.

Pairings (T a tenant model, P a plain one; "P-" a plain model without any company column):

- foreign key: T->T ``Child.owner``, T->P- ``Child.plain``, P-->T ``Plain.owner``, P-->T-child
  ``Plain.sub`` and ``Plain.heir``, T->itself ``Owner.mentor``; reverse of each.
- one-to-one: T->T ``Card.owner``, T->P- ``Card.plain``, P-->T ``PlainCard.owner``; parent links
  T-child->T ``Sub`` and T-child->P- ``Heir`` (a tenant child of a plain parent).
- many-to-many, auto-created through: T<->T ``Owner.peers``, T<->P- ``Owner.plains``; explicit
  through: a tenant one (``Group.members`` through ``Membership``) and a plain one (``Club.members``
  through ``ClubMembership``).
- ``ForeignObject`` of two columns: T->T ``Ref.owner`` (company, code), T->P- ``Ref.club`` (code,
  kind) and P->T ``PlainRef.owner`` (its own company column, code).
- ``GenericRelation`` / ``GenericForeignKey``: T->P with a company column (``Owner.feeds``, the
  issue's activity feed), T->P- (``Owner.activities``), T->T (``Owner.notices``), P-->T
  (``Plain.notices``), P-->P- (``Plain.activities``); inherited by ``Sub`` (a copied private field).
"""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models

from cobee_django.managers import TenantManager
from cobee_django.models import TenantModel


class Tagged(models.Model):
    """A plain model's tag (``p:...``): plain rows are visible to every company."""

    tag = models.CharField(max_length=40)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.tag


class Owner(TenantModel):
    tag = models.CharField(max_length=40)
    code = models.CharField(max_length=20)
    mentor = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="mentees")
    peers = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="peered_by")
    plains = models.ManyToManyField("Plain", blank=True, related_name="owners")
    feeds = GenericRelation("Feed", related_query_name="owner")
    activities = GenericRelation("Activity", related_query_name="owner")
    notices = GenericRelation("Notice", related_query_name="owner")

    class Meta:
        unique_together = [("company", "code")]


class Sub(Owner):
    """A multi-table child of a tenant model (its company is in ``Owner``'s table)."""

    sub_tag = models.CharField(max_length=40)


class Plain(Tagged):
    """Not a tenant model, and no company column at all."""

    owner = models.ForeignKey(Owner, null=True, blank=True, on_delete=models.SET_NULL, related_name="plain_refs")
    sub = models.ForeignKey(Sub, null=True, blank=True, on_delete=models.SET_NULL, related_name="plain_subs")
    heir = models.ForeignKey("Heir", null=True, blank=True, on_delete=models.SET_NULL, related_name="plain_heirs")
    notices = GenericRelation("Notice", related_query_name="plain")
    activities = GenericRelation("Activity", related_query_name="plain")


class Child(TenantModel):
    tag = models.CharField(max_length=40)
    owner = models.ForeignKey(Owner, null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    plain = models.ForeignKey(Plain, null=True, blank=True, on_delete=models.SET_NULL, related_name="children")


class Card(TenantModel):
    tag = models.CharField(max_length=40)
    owner = models.OneToOneField(Owner, null=True, blank=True, on_delete=models.SET_NULL, related_name="card")
    plain = models.OneToOneField(Plain, null=True, blank=True, on_delete=models.SET_NULL, related_name="card")


class PlainCard(Tagged):
    owner = models.OneToOneField(Owner, null=True, blank=True, on_delete=models.SET_NULL, related_name="plain_card")


class Base(Tagged):
    """A plain concrete parent of a tenant model: its table holds every company's heirs."""


class Heir(Base, TenantModel):
    """A tenant model whose multi-table parent is not one (its own table has the company column)."""

    heir_tag = models.CharField(max_length=40)

    objects = TenantManager()


class Group(TenantModel):
    tag = models.CharField(max_length=40)
    members = models.ManyToManyField(Owner, through="Membership", blank=True, related_name="groups")


class Membership(TenantModel):
    tag = models.CharField(max_length=40)
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="memberships")


class Club(Tagged):
    code = models.CharField(max_length=20)
    kind = models.CharField(max_length=20)
    members = models.ManyToManyField(Owner, through="ClubMembership", blank=True, related_name="clubs")

    class Meta:
        unique_together = [("code", "kind")]


class ClubMembership(Tagged):
    club = models.ForeignKey(Club, on_delete=models.CASCADE, related_name="club_memberships")
    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="club_memberships")


class Ref(TenantModel):
    """Points at its company's owner of the same code: a ``ForeignObject`` over two columns."""

    tag = models.CharField(max_length=40)
    code = models.CharField(max_length=20)
    owner = models.ForeignObject(
        Owner,
        on_delete=models.CASCADE,
        from_fields=["company", "code"],
        to_fields=["company", "code"],
        related_name="refs",
    )
    club_code = models.CharField(max_length=20, blank=True)
    club_kind = models.CharField(max_length=20, blank=True)
    club = models.ForeignObject(
        Club,
        on_delete=models.CASCADE,
        from_fields=["club_code", "club_kind"],
        to_fields=["code", "kind"],
        related_name="refs",
    )


class PlainRef(Tagged):
    """A plain model naming an owner by (company, code): the company column is its own, not a tenant's."""

    owner_company = models.ForeignKey("cobee_django.Company", on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=20)
    owner = models.ForeignObject(
        Owner,
        on_delete=models.CASCADE,
        from_fields=["owner_company", "code"],
        to_fields=["company", "code"],
        related_name="plain_refs_by_code",
    )


class Feed(Tagged):
    """The issue's activity feed: a plain model that records a company and points at anything."""

    company = models.ForeignKey("cobee_django.Company", on_delete=models.CASCADE, related_name="+")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")


class Activity(Tagged):
    """Like ``Feed`` without any company column: a join through it must not be a database error."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")


class Notice(TenantModel):
    """A tenant model pointing at anything through a generic foreign key."""

    tag = models.CharField(max_length=40)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
