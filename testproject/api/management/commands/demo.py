"""``manage.py demo``: migrate, seed the demo data, create demo clients, print curl commands, serve.

Running it again changes nothing in the data and prints the same clients and secrets.
"""

from __future__ import annotations

import json
import shlex
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from cobee_django.conf import get_settings
from cobee_django.devissuer import conf as issuer_conf
from testproject.api import seed
from testproject.api.demo_clients import DemoClient, ensure_clients, secrets_file
from testproject.api.demo_people import ensure_demo_people

DEFAULT_ADDRESS = "127.0.0.1:8000"
TOKEN_FROM_JSON = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"


def demo_client_specs(summary: seed.SeedSummary) -> list[tuple[str, str, Any, Any]]:
    """One client per company, then one per corporation reaching all its companies."""
    specs: list[tuple[str, str, Any, Any]] = []
    for spec in seed.COMPANIES:
        company = summary.companies_by_slug[spec.slug]
        specs.append((f"demo-{spec.slug}", spec.name, company.id, None))
    for corp in seed.CORPORATIONS:
        corporation = summary.corporations_by_slug[corp.slug]
        first = next(s for s in seed.COMPANIES if s.corporation == corp.slug)
        company = summary.companies_by_slug[first.slug]
        specs.append((f"demo-{corp.slug}", f"{corp.name} (every company)", company.id, corporation.id))
    return specs


def server_address(issuer: str) -> str:
    """Where to serve so the issuer URL reaches us: its host and port (default 127.0.0.1:8000)."""
    parts = urlsplit(issuer)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Command(BaseCommand):
    help = "Set up and run the demo: migrate, seed data and clients, print curl commands, serve on 127.0.0.1:8000."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Prepare and print, but do not start the server.")

    def handle(self, *args: Any, **options: Any) -> None:
        # As the tables' owner when the serving role is another one (MIGRATE_DATABASE_URL).
        database = "migrate" if "migrate" in settings.DATABASES else "default"
        call_command("migrate", database=database, interactive=False, verbosity=0)
        summary = seed.seed()
        issuer = get_settings().issuers[0]
        # The dev issuer is this server, so serve where its issuer URL points; else the default.
        address = server_address(issuer.issuer) if issuer_conf.enabled() else DEFAULT_ADDRESS
        base = f"http://{address}/"
        self.stdout.write(self.style.SUCCESS("cobee_django demo: the test project, seeded and ready."))
        self.stdout.write(
            f"Data: {summary.corporations} corporations, {summary.companies} companies, {summary.employees} employees, "
            f"{summary.benefit_models} benefit models, {summary.consumptions} consumptions (payrolls "
            f"{', '.join(seed.PAYROLLS)})."
        )
        if issuer_conf.enabled():
            clients = ensure_clients(demo_client_specs(summary))
            self._print_clients(clients, base, sorted(issuer.audiences)[0])
            self._print_admin(ensure_demo_people(summary), base)
        else:
            self.stdout.write(
                f"The dev issuer is off: tokens come from {issuer.issuer} (keys at {issuer.jwks_url}). "
                "Export TOKEN with an access token from it, then:"
            )
            company = summary.companies_by_slug[seed.COMPANIES[0].slug]
            self._print(f'curl -s {base}api/v3/companies/{company.id}/employees -H "Authorization: Bearer $TOKEN"')
        if options["no_serve"]:
            return
        self.stdout.write(f"\nServing on http://{address}/ (Ctrl-C to stop).\n")
        # No autoreloader: it would run this command (migrate, seed, print) a second time.
        call_command("runserver", address, use_reloader=False)

    def _print(self, line: str) -> None:
        self.stdout.write(f"  {line}")

    def _print_clients(self, clients: list[DemoClient], base: str, audience: str) -> None:
        self.stdout.write(f"\nDemo clients (secrets kept in {secrets_file()}, git-ignored):")
        for client in clients:
            tenant = f"company {client.company_id}"
            if client.corporation_id:
                tenant = f"corporation {client.corporation_id}"
            self._print(f"{client.label:<42} {tenant}")
            self._print(f"    client_id={client.client_id}  client_secret={client.secret}")
        company_client = clients[0]
        corporation_client = next(c for c in clients if c.corporation_id)
        other_company = next(
            c for c in clients if c.corporation_id is None and c.company_id != company_client.company_id
        )
        body = {
            "grant_type": "client_credentials",
            "client_id": company_client.client_id,
            "client_secret": company_client.secret,
            "audience": audience,
        }
        self.stdout.write(f"\n1. Get a token for {company_client.label} (Auth0's client-credentials grant):")
        self._print(
            f"TOKEN=$(curl -s {base}oauth/token -H 'content-type: application/json' "
            f"-d {shlex.quote(_json(body))} | {TOKEN_FROM_JSON})"
        )
        self.stdout.write("\n2. List its employees, filter them, read its benefit models:")
        employees = f"{base}api/v3/companies/{company_client.company_id}/employees"
        self._print(f'curl -s {employees} -H "Authorization: Bearer $TOKEN"')
        self._print(f'curl -s "{employees}?state=active&pageSize=2" -H "Authorization: Bearer $TOKEN"')
        self._print(
            f"curl -s {base}api/v3/companies/{company_client.company_id}/benefit-models "
            '-H "Authorization: Bearer $TOKEN"'
        )
        self.stdout.write("\n3. Another company's employees are out of reach (403):")
        self._print(
            f'curl -s -i {base}api/v3/companies/{other_company.company_id}/employees -H "Authorization: Bearer $TOKEN"'
        )
        self.stdout.write(f"\n4. A corporation-wide token ({corporation_client.label}), Cobee's token endpoint:")
        cobee_body = {"clientId": corporation_client.client_id, "clientSecret": corporation_client.secret}
        cobee_token = TOKEN_FROM_JSON.replace("access_token", "accessToken")
        self._print(
            f"CORP_TOKEN=$(curl -s {base}api/v3/oauth/token -H 'content-type: application/json' "
            f"-d {shlex.quote(_json(cobee_body))} | {cobee_token})"
        )
        self._print(f'curl -s {base}api/v3/employees -H "Authorization: Bearer $CORP_TOKEN"')
        consumptions = (
            f"{base}api/v3/corporations/{corporation_client.corporation_id}/consumptions?payroll={seed.PAYROLLS[0]}"
        )
        self._print(f'curl -s "{consumptions}" -H "Authorization: Bearer $CORP_TOKEN"')
        self._print(f'curl -s "{consumptions}" -H "Authorization: Bearer $CORP_TOKEN" -H "Accept: text/csv"')
        self.stdout.write(
            "\nNew clients: python manage.py create_dev_client --company UUID [--corporation UUID] [--json]"
        )
        self.stdout.write(
            f"A ready token: python manage.py dev_token --company {company_client.company_id} --scope read:employees"
        )

    def _print_admin(self, people: list[tuple[Any, str]], base: str) -> None:
        self.stdout.write(
            f'\n5. The admin: open {base}admin/, choose "Sign in with single sign-on" and pick a person; '
            "the switcher in the header changes the company you manage:"
        )
        for person, reach in people:
            self._print(f"{person.name:<42} {reach}")


def _json(value: dict[str, str]) -> str:
    return json.dumps(value, separators=(",", ":"))
