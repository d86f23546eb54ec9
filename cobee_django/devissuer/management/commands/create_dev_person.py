"""``manage.py create_dev_person``: someone who can sign in to the admin through the dev issuer.

The dev issuer's sign-in page lists these people (no password). ``--company`` or ``--corporation``
puts the metadata claim in their ID token (the companies they may see in the admin), ``--cobee-staff``
the staff claim (every company). Signed-in staff join the groups of ``COBEE_DJANGO["ADMIN_OIDC_GROUPS"]``:
the command creates any of them that does not exist yet, and says so (give it permissions in the admin).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from cobee_django.conf import get_settings
from cobee_django.devissuer import conf
from cobee_django.devissuer.people import DevPerson

__all__: list[str] = []


def _uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a UUID.") from None


class Command(BaseCommand):
    help = "Create (or update) a person who signs in to the admin through the development issuer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The person's name, as the sign-in page shows it.")
        parser.add_argument("--email", default="", help="Their email (the ID token's email claim).")
        parser.add_argument("--subject", help="The ID token's sub (default: dev|<email or name>).")
        parser.add_argument("--company", help="A company id (UUID) their ID token names.")
        parser.add_argument("--corporation", help="A corporation id (UUID) their ID token names.")
        parser.add_argument(
            "--cobee-staff", action="store_true", help="Send the staff claim: they reach every company."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not conf.enabled():
            raise CommandError('The development token issuer is off (COBEE_DEV_ISSUER["ENABLED"] is False).')
        name = options["name"].strip()
        if not name or len(name) > 200:
            raise CommandError("Give a name of 1 to 200 characters.")
        email = options["email"].strip()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise CommandError(f"{email!r} is not an email address.") from None
        company, corporation = _uuid(options["company"]), _uuid(options["corporation"])
        if not (company or corporation or options["cobee_staff"]):
            raise CommandError("Pass --company, --corporation or --cobee-staff: someone must be reachable.")
        subject = options["subject"] or "dev|" + re.sub(r"[^a-z0-9@._-]+", "-", (email or name).lower())
        person, created = DevPerson.objects.update_or_create(
            subject=subject,
            defaults={
                "name": name,
                "email": email,
                "company_id": company,
                "corporation_id": corporation,
                "cobee_staff": options["cobee_staff"],
            },
        )
        self.stdout.write(f"{'Created' if created else 'Updated'} {person} for the dev issuer's sign-in page.")
        for group in get_settings().admin_oidc_groups:
            _, made = Group.objects.get_or_create(name=group)
            if made:
                self.stdout.write(
                    f"Created the group {group!r} (ADMIN_OIDC_GROUPS), which signed-in staff join: give it the "
                    "permissions they need in the admin."
                )
