"""The tenant-aware admin: the registry admins and TenantAdminMixin (cobee_django.admin)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cobee_django.models import GrantSource, StaffGrant
from tests.admin_world import grant, make_staff, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


# The registry and the grants: superusers only.

REGISTRY_PAGES = [
    "admin:cobee_django_corporation_changelist",
    "admin:cobee_django_company_changelist",
    "admin:cobee_django_staffgrant_changelist",
    "admin:cobee_django_staffgrant_add",
    "admin:cobee_django_staffidentity_changelist",
]


@pytest.mark.parametrize("page", REGISTRY_PAGES)
def test_superuser_manages_the_registry(world, client, page):
    client.force_login(make_staff("root", superuser=True))
    assert client.get(reverse(page)).status_code == 200


@pytest.mark.parametrize("page", REGISTRY_PAGES)
def test_staff_cannot_see_the_registry_even_with_django_permissions(world, client, page):
    user = make_staff(
        "op",
        perms=("view_staffgrant", "add_staffgrant", "change_staffgrant", "view_company", "view_corporation"),
    )
    grant(user, world.acme)
    client.force_login(user)
    assert client.get(reverse(page)).status_code == 403


def test_registry_is_not_listed_for_staff(world, client):
    user = make_staff("op", perms=("view_staffgrant",))
    grant(user, world.acme)
    client.force_login(user)
    assert "cobee_django/staffgrant" not in client.get(reverse("admin:index")).content.decode()


def test_grant_edited_by_a_superuser_is_an_admin_grant(world, client):
    client.force_login(make_staff("root", superuser=True))
    operator = make_staff("op")
    existing = grant(operator, world.acme_north, source=GrantSource.OIDC)
    response = client.post(
        reverse("admin:cobee_django_staffgrant_change", args=[existing.pk]),
        {"user": operator.pk, "company": str(world.acme_south.id), "corporation": "", "source": "oidc"},
    )
    assert response.status_code == 302, response.content.decode()
    existing.refresh_from_db()
    assert existing.company_id == world.acme_south.id
    assert existing.source == GrantSource.ADMIN


def test_grant_needs_exactly_one_target(world, client):
    client.force_login(make_staff("root", superuser=True))
    operator = make_staff("op")
    response = client.post(
        reverse("admin:cobee_django_staffgrant_add"),
        {"user": operator.pk, "company": str(world.acme_north.id), "corporation": str(world.acme.id)},
    )
    assert response.status_code == 200  # the form is shown again with the error
    assert not StaffGrant.objects.exists()


def test_staff_identities_are_read_only(world, client):
    client.force_login(make_staff("root", superuser=True))
    assert client.get(reverse("admin:cobee_django_staffidentity_add")).status_code == 403


def test_switcher_template_order_is_checked(settings):
    from django.core.checks import run_checks
    from django.test import override_settings

    def ids():
        return {m.id for m in run_checks() if m.id and m.id.startswith("cobee_django.W")}

    assert ids() == set()
    apps = [a for a in settings.INSTALLED_APPS if a != "cobee_django"]
    with override_settings(INSTALLED_APPS=[*apps, "cobee_django"]):
        assert ids() == {"cobee_django.W001"}
