"""Who may manage what, and the active company kept in the session (cobee_django.staff)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory, override_settings
from django.urls import reverse

from cobee_django import staff
from cobee_django.models import StaffGrant, StaffIdentity
from tests.testapp.admin_world import grant, make_staff, make_world

pytestmark = pytest.mark.django_db
SESSION_KEY = "cobee_django_active_tenant"


@pytest.fixture
def world():
    return make_world()


def keys(choices):
    return [c.key for c in choices]


def session_request(user, stored=None):
    """A request carrying ``user`` and a real (database) session."""
    from django.contrib.sessions.backends.db import SessionStore

    request = RequestFactory().get("/admin/")
    request.user = user
    request.session = SessionStore()
    if stored is not None:
        request.session[SESSION_KEY] = stored
    return request


def test_company_grant_reaches_that_company_only(world):
    user = make_staff("op")
    grant(user, world.acme_north)
    choices = staff.choices_for(user)
    assert keys(choices) == [f"company:{world.acme_north.id}"]
    assert choices[0].company_ids == {world.acme_north.id}
    assert choices[0].corporation_id is None


def test_corporation_grant_offers_the_whole_corporation_and_each_company(world):
    user = make_staff("op")
    grant(user, world.acme)
    choices = staff.choices_for(user)
    assert keys(choices) == [
        f"corporation:{world.acme.id}",
        f"company:{world.acme_north.id}",
        f"company:{world.acme_south.id}",
    ]
    assert choices[0].company_ids == {world.acme_north.id, world.acme_south.id}
    assert choices[0].corporation_id == world.acme.id
    assert choices[0].single_company_id is None
    assert choices[1].single_company_id == world.acme_north.id


def test_grants_add_up_without_duplicates(world):
    user = make_staff("op")
    grant(user, world.acme)
    grant(user, world.acme_south)  # already inside Acme
    grant(user, world.lonely)
    assert keys(staff.choices_for(user)) == [
        f"corporation:{world.acme.id}",
        f"company:{world.acme_north.id}",
        f"company:{world.acme_south.id}",
        f"company:{world.lonely.id}",
    ]


def test_company_of_an_ungranted_corporation_does_not_open_the_corporation(world):
    user = make_staff("op")
    grant(user, world.globex_one)
    assert keys(staff.choices_for(user)) == [f"company:{world.globex_one.id}"]


def test_corporation_without_companies_is_not_offered(world):
    from cobee_django.models import Corporation

    empty = Corporation.objects.create(name="Empty")
    user = make_staff("op")
    grant(user, empty)
    assert staff.choices_for(user) == []


def test_superuser_reaches_every_company(world):
    admin = make_staff("root", superuser=True)
    assert staff.reaches_every_company(admin)
    choices = staff.choices_for(admin)
    company_keys = {k for k in keys(choices) if k.startswith("company:")}
    assert company_keys == {
        f"company:{c.id}" for c in (world.acme_north, world.acme_south, world.globex_one, world.lonely)
    }
    assert f"corporation:{world.globex.id}" in keys(choices)


def test_staff_claim_identity_reaches_every_company(world):
    user = make_staff("cobee")
    StaffIdentity.objects.create(user=user, issuer="https://idp/", subject="s", all_companies=True)
    assert staff.reaches_every_company(user)
    assert len([k for k in keys(staff.choices_for(user)) if k.startswith("company:")]) == 4


@pytest.mark.parametrize("flags", [{"is_staff": False}, {"is_active": False}])
def test_non_staff_and_inactive_users_reach_nothing(world, flags):
    user = make_staff("op", superuser=True)
    for name, value in flags.items():
        setattr(user, name, value)
    user.save()
    grant(user, world.acme)
    assert staff.choices_for(user) == []
    assert not staff.reaches_every_company(user)


def test_anonymous_reaches_nothing(world):
    assert staff.choices_for(AnonymousUser()) == []
    assert staff.active_choice(session_request(AnonymousUser())) is None


def test_first_choice_is_active_by_default_and_stored(world):
    user = make_staff("op")
    grant(user, world.acme)
    request = session_request(user)
    choice = staff.active_choice(request)
    assert choice.key == f"corporation:{world.acme.id}"
    assert request.session[SESSION_KEY] == choice.key


def test_session_choice_is_kept_while_granted(world):
    user = make_staff("op")
    grant(user, world.acme)
    request = session_request(user, stored=f"company:{world.acme_south.id}")
    assert staff.active_choice(request).company_ids == {world.acme_south.id}


@pytest.mark.parametrize(
    "forged",
    [
        "company:00000000-0000-0000-0000-000000000015",  # Globex One is not granted
        "corporation:00000000-0000-0000-0000-000000000002",
        "company:not-a-uuid",
        "everything",
        "",
        ["company:00000000-0000-0000-0000-000000000015"],
        {"company_ids": ["00000000-0000-0000-0000-000000000015"]},
        None,
    ],
)
def test_tampered_session_never_widens_access(world, forged):
    user = make_staff("op")
    grant(user, world.acme_north)
    request = session_request(user, stored=forged)
    choice = staff.active_choice(request)
    assert choice.company_ids == {world.acme_north.id}
    assert request.session[SESSION_KEY] == f"company:{world.acme_north.id}"


def test_revoked_grant_takes_effect_on_the_next_request(world):
    user = make_staff("op")
    grant(user, world.acme_north)
    globex = grant(user, world.globex)
    first = session_request(user, stored=f"corporation:{world.globex.id}")
    assert staff.active_choice(first).company_ids == {world.globex_one.id}
    globex.delete()
    second = session_request(user, stored=first.session[SESSION_KEY])
    assert staff.active_choice(second).company_ids == {world.acme_north.id}


def test_all_grants_revoked_leaves_no_choice_and_clears_the_session(world):
    user = make_staff("op")
    grant(user, world.acme_north)
    StaffGrant.objects.filter(user=user).delete()
    request = session_request(user, stored=f"company:{world.acme_north.id}")
    assert staff.active_choice(request) is None
    assert SESSION_KEY not in request.session


def test_company_moving_out_of_a_granted_corporation_leaves_its_scope(world):
    user = make_staff("op")
    grant(user, world.acme)
    world.acme_south.corporation = world.globex
    world.acme_south.save()
    request = session_request(user, stored=f"corporation:{world.acme.id}")
    assert staff.active_choice(request).company_ids == {world.acme_north.id}


def test_session_key_follows_the_setting(world, settings):
    user = make_staff("op")
    grant(user, world.acme)
    with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, "ADMIN_SESSION_KEY": "other"}):
        request = session_request(user)
        staff.active_choice(request)
        assert request.session["other"] == f"corporation:{world.acme.id}"
        assert SESSION_KEY not in request.session


def test_switch_accepts_only_granted_choices(world):
    user = make_staff("op")
    grant(user, world.acme)
    request = session_request(user)
    assert staff.switch(request, f"company:{world.globex_one.id}") is None
    assert SESSION_KEY not in request.session
    choice = staff.switch(request, f"company:{world.acme_south.id}")
    assert choice.company_ids == {world.acme_south.id}
    assert request.session[SESSION_KEY] == choice.key
    assert staff.active_choice(request) == choice


# The switch view, over Django's test client (sessions, CSRF and middleware are real).


@pytest.fixture
def operator(world, client):
    user = make_staff("op")
    grant(user, world.acme)
    client.force_login(user)
    return user


def switch_url():
    return reverse("cobee_django:switch_tenant")


def test_switch_view_changes_the_active_company(world, operator, client):
    response = client.post(switch_url(), {"tenant": f"company:{world.acme_south.id}", "next": "/admin/"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert client.session[SESSION_KEY] == f"company:{world.acme_south.id}"


@pytest.mark.parametrize(
    "value",
    [
        "company:00000000-0000-0000-0000-000000000015",
        "corporation:00000000-0000-0000-0000-000000000002",
        "company:00000000-0000-0000-0000-000000000031",
        "company:*",
        "",
    ],
)
def test_switch_view_refuses_what_the_user_may_not_manage(world, operator, client, value):
    client.post(switch_url(), {"tenant": f"company:{world.acme_north.id}"})
    response = client.post(switch_url(), {"tenant": value})
    assert response.status_code == 400
    assert client.session[SESSION_KEY] == f"company:{world.acme_north.id}"


def test_switch_view_needs_post(operator, client):
    assert client.get(switch_url(), {"tenant": "x"}).status_code == 405


def test_switch_view_needs_csrf(world, operator):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(operator)
    response = csrf_client.post(switch_url(), {"tenant": f"company:{world.acme_south.id}"})
    assert response.status_code == 403
    assert SESSION_KEY not in csrf_client.session


def test_switch_view_ignores_an_offsite_next(world, operator, client):
    response = client.post(switch_url(), {"tenant": f"company:{world.acme_south.id}", "next": "https://evil.example/"})
    assert response.headers["Location"] == reverse("admin:index")


def test_switch_view_sends_anonymous_users_to_sign_in(world, client):
    response = client.post(switch_url(), {"tenant": f"company:{world.acme_south.id}"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("admin:login"))


def test_switcher_is_on_every_admin_page(world, operator, client):
    for url in (reverse("admin:index"), reverse("admin:password_change")):
        body = client.get(url).content.decode()
        assert 'id="cobee-tenant-switcher"' in body
        assert f'value="company:{world.acme_south.id}"' in body
        assert f'value="company:{world.globex_one.id}"' not in body
        assert "csrfmiddlewaretoken" in body
    assert "Managing <strong" in body


def test_switcher_is_not_shown_to_anonymous_users(world, client):
    assert 'id="cobee-tenant-switcher"' not in client.get(reverse("admin:login")).content.decode()


# What the tenant middleware binds for an admin request.


def test_tenant_for_request_is_the_active_choice(world):
    user = make_staff("op")
    grant(user, world.acme)
    tenant = staff.tenant_for_request(session_request(user))
    assert tenant.company_ids == {world.acme_north.id, world.acme_south.id}
    assert tenant.corporation_id == world.acme.id
    assert tenant.principal == user
    one = staff.tenant_for_request(session_request(user, stored=f"company:{world.acme_south.id}"))
    assert one.company_ids == {world.acme_south.id}
    assert one.corporation_id is None


def test_no_grant_binds_no_tenant(world):
    assert staff.tenant_for_request(session_request(make_staff("op"))) is None


def only_north(corporation_id):
    return ["00000000-0000-0000-0000-00000000000b"]


def test_membership_resolver_decides_a_corporations_companies(world, settings):
    user = make_staff("op")
    grant(user, world.acme)
    resolver = f"{__name__}.only_north"
    with override_settings(COBEE_DJANGO={**settings.COBEE_DJANGO, "MEMBERSHIP_RESOLVER": resolver}):
        choices = staff.choices_for(user)
    assert keys(choices) == [f"corporation:{world.acme.id}", f"company:{world.acme_north.id}"]
    assert choices[0].company_ids == {world.acme_north.id}
