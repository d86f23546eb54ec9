"""``manage.py dev_token``: print a ready access token for a company or a corporation, signed by the dev issuer.

Only the token goes to stdout, so a shell can keep it:
``TOKEN=$(python manage.py dev_token --company UUID --scope read:employees)``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cobee_django.devissuer import conf, keys
from cobee_django.devissuer.views import ORGANIZATION_ID
from cobee_django.models import Company

__all__: list[str] = []

#: The ``azp`` of tokens minted here (no stored client is involved).
CLI_CLIENT_ID = "cobee-devissuer-cli"


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a UUID.") from None


def _first_company_of(corporation_id: uuid.UUID) -> uuid.UUID:
    """A corporation token still names one company (Cobee's tokens always do): its first one."""
    company_id: uuid.UUID | None = (
        Company.objects.filter(corporation_id=corporation_id).order_by("pk").values_list("pk", flat=True).first()
    )
    if company_id is None:
        raise CommandError(f"No company of corporation {corporation_id} is stored: pass --company as well.")
    return company_id


class Command(BaseCommand):
    help = (
        "Print an access token from the development token issuer for a company (--company) or a corporation "
        "(--corporation), with the scopes given (--scope, repeatable)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", help="The company id (UUID) the token carries.")
        parser.add_argument("--corporation", help="A corporation id (UUID): the token reaches every company of it.")
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            help='A scope the token grants, e.g. read:employees (repeat it, or give several in quotes "a b").',
        )
        parser.add_argument("--audience", help="The token's audience (default: the first configured one).")
        parser.add_argument("--lifetime", type=int, help="Seconds the token lives (default: TOKEN_LIFETIME).")
        parser.add_argument("--org-id", help="An Auth0 organization id (org_...) the token names in org_id.")
        parser.add_argument("--dpop-jkt", help="Bind the token to a DPoP key: its RFC 7638 thumbprint (cnf.jkt).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not conf.enabled():
            raise CommandError('The development token issuer is off (COBEE_DEV_ISSUER["ENABLED"] is False).')
        if conf.refuses_to_run():
            raise CommandError(f"{conf.REFUSAL} {conf.REFUSAL_HINT}")
        if not options["company"] and not options["corporation"]:
            raise CommandError("Pass --company UUID, --corporation UUID, or both.")
        corporation_id = _uuid(options["corporation"]) if options["corporation"] else None
        if options["company"]:
            company_id = _uuid(options["company"])
        else:
            assert corporation_id is not None
            company_id = _first_company_of(corporation_id)
        scopes = [scope for value in options["scope"] for scope in value.split()]
        audience = options["audience"] or conf.default_audience()
        if audience not in conf.served_issuer().audiences:
            raise CommandError(f"{audience!r} is not an audience COBEE_DJANGO trusts.")
        lifetime = options["lifetime"] if options["lifetime"] is not None else conf.token_lifetime()
        if lifetime <= 0:
            raise CommandError("--lifetime must be a positive number of seconds.")
        token = keys.get_issuer().make_token(
            company_id=company_id,
            corporation_id=corporation_id,
            scopes=scopes,
            client_id=CLI_CLIENT_ID,
            lifetime=lifetime,
            aud=audience,
            **self._extra_claims(options),
        )
        self.stdout.write(token)

    def _extra_claims(self, options: dict[str, Any]) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        if options["org_id"]:
            if not ORGANIZATION_ID.fullmatch(options["org_id"]):
                raise CommandError("--org-id must be an Auth0 organization id (org_ and letters or digits).")
            claims["org_id"] = options["org_id"]
        if options["dpop_jkt"]:
            if not re.fullmatch(r"[A-Za-z0-9_-]{43}", options["dpop_jkt"]):
                raise CommandError("--dpop-jkt must be a base64url SHA-256 thumbprint (43 characters).")
            claims["cnf"] = {"jkt": options["dpop_jkt"]}
        return claims
