"""Membership set in the admin wins over tokens: a superuser's edit is asserted at that moment.

End to end: a superuser edits the registry through the admin (Django's test client), then a real
token goes through ``JWTAuthentication`` and tries to move the company back, then the corporation
reads the API.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid

import pytest
from django.urls import reverse

from cobee_django import membership
from cobee_django.models import Company, Corporation, _MembershipSource
from cobee_django.state import unscoped
from tests.testapp.admin_world import make_staff, make_world
from tests.testapp.models import Employee

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.testapp.registry_and_api_urls")]

READ = ["read:employees"]
HOUR = 3600


@pytest.fixture(autouse=True)
def _tokens_provision(settings):
    """These tests are about tokens meeting admin links: the project opts in to tokens recording links."""
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "PROVISION_MEMBERSHIP": True}


@pytest.fixture(autouse=True)
def _fresh_membership_cache():
    membership._reset()
    yield
    membership._reset()


@pytest.fixture
def world():
    world = make_world()
    with unscoped():
        Employee.objects.create(company=world.acme_south, email="cfo@south.test", salary=250_000)
    return world


@pytest.fixture
def superuser(client):
    client.force_login(make_staff("root", superuser=True))
    return client


def token_reads(cobee_api_client, company, corporation, *, iat):
    """A token of ``company`` (and ``corporation``) issued at ``iat`` reads its company's employees."""
    api = cobee_api_client(company=company.id, corporation=corporation.id, scopes=READ, iat=int(iat))
    return api.get(f"/api/v3/companies/{company.id}/employees")


def corporation_of(company) -> uuid.UUID | None:
    return Company.objects.get(pk=company.pk).corporation_id


def salaries_seen_by(cobee_api_client, company, corporation):
    """What a client of ``corporation`` (its token naming ``company``) reads of each company."""
    api = cobee_api_client(company=company.id, corporation=corporation.id, scopes=READ)
    seen = {}
    for target in Company.objects.all():
        response = api.get(f"/api/v3/companies/{target.id}/employees")
        if response.status_code == 200:
            seen[target.name] = [row["email"] for row in response.json()]
    return seen


def move_in_admin(client, company, corporation):
    response = client.post(
        reverse("admin:cobee_django_company_change", args=[company.pk]),
        {"id": str(company.pk), "name": company.name, "corporation": str(corporation.pk) if corporation else ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]


def test_an_older_token_cannot_undo_a_move_made_in_the_admin(world, superuser, cobee_api_client):
    before_the_edit = time.time() - HOUR
    move_in_admin(superuser, world.acme_south, world.globex)
    row = Company.objects.get(pk=world.acme_south.pk)
    assert row.membership_source == _MembershipSource.ADMIN and row.membership_asserted_at is not None

    # A client of the company still holds a token from before the move, naming the old corporation.
    assert token_reads(cobee_api_client, world.acme_south, world.acme, iat=before_the_edit).status_code == 200
    assert corporation_of(world.acme_south) == world.globex.id

    # Acme's clients do not read the moved company's salaries; Globex's do.
    assert "Acme South" not in salaries_seen_by(cobee_api_client, world.acme_north, world.acme)
    assert salaries_seen_by(cobee_api_client, world.globex_one, world.globex)["Acme South"] == ["cfo@south.test"]


def made_an_hour_ago(company):
    """Date the admin's assertion back, so a token issued now is newer than the edit."""
    Company.objects.filter(pk=company.pk).update(
        membership_asserted_at=Company.objects.get(pk=company.pk).membership_asserted_at - datetime.timedelta(hours=1)
    )


def test_a_newer_token_naming_another_corporation_does_not_move_an_admin_link(
    world, superuser, cobee_api_client, caplog
):
    move_in_admin(superuser, world.acme_south, world.globex)
    made_an_hour_ago(world.acme_south)
    with caplog.at_level(logging.WARNING, logger="cobee_django.membership"):
        assert token_reads(cobee_api_client, world.acme_south, world.acme, iat=time.time()).status_code == 200
    assert corporation_of(world.acme_south) == world.globex.id
    assert "not recorded" in caplog.text
    assert "Acme South" not in salaries_seen_by(cobee_api_client, world.acme_north, world.acme)


def test_a_company_created_in_the_admin_is_claimed_by_no_token(world, superuser, cobee_api_client):
    before = time.time() - HOUR
    new_id = uuid.uuid4()
    response = superuser.post(
        reverse("admin:cobee_django_company_add"), {"id": str(new_id), "name": "Brand New", "corporation": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Company.objects.get(pk=new_id)
    assert created.membership_source == _MembershipSource.ADMIN and created.membership_asserted_at is not None
    made_an_hour_ago(created)
    for iat in (before - HOUR, time.time()):  # older, then newer than the admin's assertion
        assert token_reads(cobee_api_client, created, world.acme, iat=iat).status_code == 200
        assert corporation_of(created) is None
    assert "Brand New" not in salaries_seen_by(cobee_api_client, world.acme_north, world.acme)


def test_a_company_added_to_a_corporation_in_its_inline_keeps_it(world, superuser, cobee_api_client):
    new_id = uuid.uuid4()
    response = superuser.post(
        reverse("admin:cobee_django_corporation_change", args=[world.globex.pk]),
        {
            "id": str(world.globex.pk),
            "name": "Globex",
            "companies-TOTAL_FORMS": "2",
            "companies-INITIAL_FORMS": "1",
            "companies-0-id": str(world.globex_one.pk),
            "companies-0-name": "Globex One",
            "companies-0-corporation": str(world.globex.pk),
            "companies-1-id": str(new_id),
            "companies-1-name": "Globex Two",
            "companies-1-corporation": str(world.globex.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    added = Company.objects.get(pk=new_id)
    assert added.corporation_id == world.globex.id
    assert added.membership_source == _MembershipSource.ADMIN and added.membership_asserted_at is not None
    # An untouched row of the inline keeps what it was.
    assert Company.objects.get(pk=world.globex_one.pk).membership_asserted_at is None
    token_reads(cobee_api_client, added, world.acme, iat=time.time() - HOUR)
    assert corporation_of(added) == world.globex.id


def test_the_inline_cannot_take_over_an_existing_company_by_its_id(world, superuser):
    response = superuser.post(
        reverse("admin:cobee_django_corporation_change", args=[world.globex.pk]),
        {
            "id": str(world.globex.pk),
            "name": "Globex",
            "companies-TOTAL_FORMS": "1",
            "companies-INITIAL_FORMS": "0",
            "companies-0-id": str(world.acme_south.pk),
            "companies-0-name": "Stolen",
            "companies-0-corporation": str(world.globex.pk),
        },
    )
    assert response.status_code == 200  # the form again, with the error
    row = Company.objects.get(pk=world.acme_south.pk)
    assert (row.corporation_id, row.name) == (world.acme.id, "Acme South")


def test_deleting_a_corporation_in_the_admin_leaves_its_companies_unclaimable(world, superuser, cobee_api_client):
    response = superuser.post(reverse("admin:cobee_django_corporation_delete", args=[world.acme.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert corporation_of(world.acme_south) is None
    token_reads(cobee_api_client, world.acme_south, world.acme, iat=time.time() - HOUR)
    assert corporation_of(world.acme_south) is None


def test_deleting_corporations_with_the_bulk_action_does_the_same(world, superuser, cobee_api_client):
    response = superuser.post(
        reverse("admin:cobee_django_corporation_changelist"),
        {"action": "delete_selected", "_selected_action": [str(world.acme.pk)], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Corporation.objects.filter(pk=world.acme.pk).exists()
    token_reads(cobee_api_client, world.acme_north, world.acme, iat=time.time() - HOUR)
    assert corporation_of(world.acme_north) is None


def test_renaming_a_company_does_not_reassert_its_link(world, superuser, cobee_api_client):
    move_in_admin(superuser, world.acme_south, world.acme)  # same corporation: a rename-only save
    assert Company.objects.get(pk=world.acme_south.pk).membership_asserted_at is None


@pytest.mark.parametrize(
    "corporation", ["7a0e4c2b-91d3-4f65-8b27-c4e9d1a03f58", "not-a-uuid", "1"]
)  # constant test ids
def test_an_unknown_corporation_is_a_form_error(world, superuser, corporation):
    response = superuser.post(
        reverse("admin:cobee_django_company_change", args=[world.acme_south.pk]),
        {"id": str(world.acme_south.pk), "name": "Acme South", "corporation": corporation},
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert corporation_of(world.acme_south) == world.acme.id


@pytest.mark.parametrize(
    "form",
    [{}, {"id": "not-a-uuid", "name": "x"}, {"id": "", "name": "x" * 500}, {"corporation": ["a", "b"]}],
)
def test_a_malformed_company_form_is_a_form_error(world, superuser, form):
    response = superuser.post(reverse("admin:cobee_django_company_add"), form)
    assert response.status_code == 200
    assert Company.objects.count() == 4


def test_a_link_from_a_directory_import_is_as_final_as_the_admins(world):
    from django.utils import timezone

    from tests.testapp.auth import principal

    Company.objects.filter(pk=world.acme_south.pk).update(
        corporation=world.globex,
        membership_source=_MembershipSource.IMPORT,
        membership_asserted_at=timezone.now() - datetime.timedelta(hours=1),
    )
    membership.record_token(principal(world.acme_south.id, world.acme.id, iat=time.time()))
    assert corporation_of(world.acme_south) == world.globex.id


def test_links_never_asserted_stay_open_to_tokens(world):
    """Rows written in code (no membership_asserted_at) keep the token rules: the newest token moves them."""
    from tests.testapp.auth import principal

    membership.record_token(principal(world.acme_south.id, world.globex.id, iat=time.time()))
    assert corporation_of(world.acme_south) == world.globex.id


def test_only_a_conflict_with_an_authoritative_link_is_a_warning(world, caplog):
    """An older token meeting a newer token's link is routine (after a restart): no warning for it."""
    from tests.testapp.auth import principal

    membership.record_token(principal(world.acme_south.id, world.globex.id, iat=time.time()))
    membership._reset()
    with caplog.at_level(logging.WARNING, logger="cobee_django.membership"):
        membership.record_token(principal(world.acme_south.id, world.acme.id, iat=time.time() - HOUR))
    assert corporation_of(world.acme_south) == world.globex.id
    assert caplog.text == ""
