"""``manage.py dev_oidc_settings``: the admin's OpenID settings, derived from a discovery document.

Without ``--url``, from the development issuer's own document (no HTTP); with ``--url``, from any
provider's ``.well-known/openid-configuration`` (Auth0's, for production settings). Prints the five
lines to paste into the settings.
"""

from __future__ import annotations

from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cobee_django.devissuer import conf
from cobee_django.devissuer.oidc_provider import oidc_settings
from cobee_django.devissuer.views import discovery_document

__all__: list[str] = []


class Command(BaseCommand):
    help = (
        "Print the admin's five OpenID settings (OIDC_OP_*_ENDPOINT and ADMIN_OIDC_ISSUER) from the development "
        "issuer's discovery document, or from the one at --url."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="A provider's discovery document (…/.well-known/openid-configuration).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["url"]:
            document = self._fetch(options["url"])
        else:
            if not conf.enabled():
                raise CommandError("The development token issuer is off: pass --url with your provider's document.")
            document = discovery_document()
        try:
            found = oidc_settings(document)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        issuer = found.pop("ADMIN_OIDC_ISSUER")
        for name, value in found.items():
            self.stdout.write(f"{name} = {value!r}")
        self.stdout.write(f'COBEE_DJANGO["ADMIN_OIDC_ISSUER"] = {issuer!r}')

    @staticmethod
    def _fetch(url: str) -> dict[str, Any]:
        if not url.startswith(("https://", "http://")):
            raise CommandError(f"{url!r} is not an http(s) URL.")
        try:
            response = requests.get(url, timeout=10)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"Could not read the discovery document at {url}: {type(exc).__name__}.") from None
        if not isinstance(document, dict):
            raise CommandError(f"The document at {url} is not a JSON object.")
        return document
