"""``manage.py create_dev_client``: store a dev issuer client and print its secret once."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cobee_django.devissuer.models import DEFAULT_SCOPES, DevClient

__all__: list[str] = []


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a UUID.") from None


class Command(BaseCommand):
    help = "Create a client of the development token issuer and print its id and secret (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="The company id (UUID) the client's tokens carry.")
        parser.add_argument("--corporation", help="A corporation id (UUID): the client may reach all its companies.")
        parser.add_argument(
            "--scope", default=DEFAULT_SCOPES, help=f'Space-separated scopes (default "{DEFAULT_SCOPES}").'
        )
        parser.add_argument("--name", default="", help="A label for the client.")
        parser.add_argument(
            "--json", action="store_true", help='End with one line {"client_id": ..., "client_secret": ...}.'
        )

    def handle(self, *args: Any, **options: Any) -> None:
        company_id = _uuid(options["company"])
        corporation_id = _uuid(options["corporation"]) if options["corporation"] else None
        scopes = options["scope"].split()
        if not scopes:
            raise CommandError("--scope needs at least one scope.")
        client, secret = DevClient.objects.create_client(
            company_id=company_id, corporation_id=corporation_id, scopes=" ".join(scopes), name=options["name"]
        )
        tenant = f"company {company_id}" + (f", corporation {corporation_id}" if corporation_id else "")
        self.stdout.write(f"Created dev client for {tenant} with scopes: {client.scopes}")
        self.stdout.write("The secret is shown only this once; it is stored hashed.")
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": client.client_id, "client_secret": secret}))
        else:
            self.stdout.write(f"client_id:     {client.client_id}")
            self.stdout.write(f"client_secret: {secret}")
