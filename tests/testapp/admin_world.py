"""A small registry shared by the admin tests: two corporations, companies, staff users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from cobee_django.models import Company, Corporation, StaffGrant, _GrantSource

ADMIN_TEST_APPS = ("cobee_django", "testapp")


@dataclass
class World:
    acme: Corporation
    globex: Corporation
    acme_north: Company
    acme_south: Company
    globex_one: Company
    lonely: Company


def make_world() -> World:
    acme = Corporation.objects.create(id=uuid.UUID(int=1), name="Acme")
    globex = Corporation.objects.create(id=uuid.UUID(int=2), name="Globex")
    return World(
        acme=acme,
        globex=globex,
        acme_north=Company.objects.create(id=uuid.UUID(int=11), name="Acme North", corporation=acme),
        acme_south=Company.objects.create(id=uuid.UUID(int=12), name="Acme South", corporation=acme),
        globex_one=Company.objects.create(id=uuid.UUID(int=21), name="Globex One", corporation=globex),
        lonely=Company.objects.create(id=uuid.UUID(int=31), name="Lonely"),
    )


def make_staff(username: str, *, superuser: bool = False, perms: tuple[str, ...] = ()):
    user = get_user_model().objects.create_user(username, is_staff=True, is_superuser=superuser)
    for codename in perms:
        # The test project has an Employee model too: take the permission of the admin tests' apps.
        permission = Permission.objects.get(codename=codename, content_type__app_label__in=ADMIN_TEST_APPS)
        user.user_permissions.add(permission)
    return user


def grant(user, target, source: str = _GrantSource.ADMIN) -> StaffGrant:
    if isinstance(target, Company):
        return StaffGrant.objects.create(user=user, company=target, source=source)
    return StaffGrant.objects.create(user=user, corporation=target, source=source)


def point_oidc_at(settings, base: str) -> None:
    """Make the project's dev issuer and its admin's OIDC sign-in live at ``base`` (a live server)."""
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ISSUER": f"{base}/", "ADMIN_OIDC_ISSUER": f"{base}/"}
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{base}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{base}/oauth/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{base}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{base}/.well-known/jwks.json"
    settings.COBEE_DEV_ISSUER = {**getattr(settings, "COBEE_DEV_ISSUER", {}), "ENABLED": True}
    settings.DEBUG = True  # as in development (pytest-django turns DEBUG off; the issuer then refuses)
