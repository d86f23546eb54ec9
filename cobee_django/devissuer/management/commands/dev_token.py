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


def _company_of(corporation_id: uuid.UUID, company: uuid.UUID | None) -> Company:
    """The company a corporation token names (Cobee's tokens always name one): the one given, or the
    corporation's only company. With several and none given, the user must say which."""
    companies: list[Company] = list(Company.objects.filter(corporation_id=corporation_id).order_by("name", "pk"))
    if company is not None:
        chosen = next((c for c in companies if c.pk == company), None)
        if chosen is None:
            raise CommandError(f"Company {company} is not a company of corporation {corporation_id}.")
        return chosen
    if not companies:
        raise CommandError(f"No company of corporation {corporation_id} is stored: create one, or pass --company.")
    if len(companies) > 1:
        listed = ", ".join(f"{c.name or '(no name)'} {c.pk}" for c in companies)
        raise CommandError(
            f"Corporation {corporation_id} has {len(companies)} companies ({listed}): pass --company with the one "
            "the token names."
        )
    return companies[0]


class Command(BaseCommand):
    help = (
        "Print an access token from the development token issuer for a company (--company) or a corporation "
        "(--corporation; with --company when it has several), with the scopes given (--scope, repeatable)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", help="The company id (UUID) the token carries.")
        parser.add_argument(
            "--corporation",
            help="A corporation id (UUID): the token reaches every company of it. It still names one company: "
            "--company, or the corporation's only one (the command says which on stderr).",
        )
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
        company_id = _uuid(options["company"]) if options["company"] else None
        if corporation_id is not None:
            company = _company_of(corporation_id, company_id)
            company_id = company.pk
            # stderr: stdout holds only the token, for TOKEN=$(manage.py dev_token ...).
            self.stderr.write(f"The token names company {company.name or '(no name)'} ({company.pk}).")
        assert company_id is not None
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
