"""People who sign in to the demo's admin through the dev issuer's OpenID provider.

One operator per corporation (every company of it), one for a company on its own, and one Cobee
support person (the staff claim: every company). Every OIDC-signed-in person joins the
``Operators`` group (``COBEE_DJANGO["ADMIN_OIDC_GROUPS"]``), which may manage the API's models; the
switcher decides which company's rows they see. Running it again changes nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from cobee_django.devissuer.people import DevPerson

from . import seed

OPERATORS_GROUP = "Operators"


def ensure_operators_group() -> Group:
    """The group whose permissions OIDC-signed-in staff get: everything on the API's models."""
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label="api"))
    return group


def ensure_demo_people(summary: seed.SeedSummary) -> list[tuple[DevPerson, str]]:
    """The demo's people, each with what they may manage (in words)."""
    ensure_operators_group()
    people: list[tuple[DevPerson, str]] = []
    for corp in seed.CORPORATIONS:
        corporation = summary.corporations_by_slug[corp.slug]
        person, _ = DevPerson.objects.update_or_create(
            subject=f"dev|operator-{corp.slug}",
            defaults={
                "name": f"Operator {corp.name}",
                "email": f"operator@{corp.slug}.example",
                "company_id": None,
                "corporation_id": corporation.id,
                "cobee_staff": False,
            },
        )
        people.append((person, f"every company of {corp.name}"))
    alone = next((c for c in seed.COMPANIES if c.corporation is None), seed.COMPANIES[0])
    company = summary.companies_by_slug[alone.slug]
    person, _ = DevPerson.objects.update_or_create(
        subject=f"dev|operator-{alone.slug}",
        defaults={
            "name": f"Operator {alone.name}",
            "email": f"operator@{alone.domain}",
            "company_id": company.id,
            "corporation_id": None,
            "cobee_staff": False,
        },
    )
    people.append((person, alone.name))
    person, _ = DevPerson.objects.update_or_create(
        subject="dev|cobee-support",
        defaults={"name": "Cobee Support", "email": "support@cobee.example", "cobee_staff": True},
    )
    people.append((person, "every company (Cobee staff)"))
    return people
