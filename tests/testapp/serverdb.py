"""Prepare the database a served test project uses: ``python -m tests.testapp.serverdb``.

Run in a subprocess with the server's environment (``DATABASE_URL``, ``DJANGO_SETTINGS_MODULE``): it
migrates, seeds the demo data set with the ORM inside ``unscoped()``, and prints the world as one JSON
line (corporations, companies and the ids of their rows) for the tests to attack with.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    from cobee_django.models import Company, Corporation
    from cobee_django.state import unscoped
    from testproject.api import seed
    from testproject.api.models import BenefitModel, Consumption, Employee

    with unscoped():
        seed.seed()
        world = {
            "corporations": [str(pk) for pk in Corporation.objects.order_by("pk").values_list("pk", flat=True)],
            "companies": {
                str(company.pk): {
                    "name": company.name,
                    "corporation": str(company.corporation_id) if company.corporation_id else None,
                    "employees": [
                        {"id": str(pk), "email": email, "legalId": legal_id}
                        for pk, email, legal_id in Employee.objects.filter(company=company).values_list(
                            "pk", "email", "legal_id"
                        )
                    ],
                    "benefit_models": [
                        str(pk) for pk in BenefitModel.objects.filter(company=company).values_list("pk", flat=True)
                    ],
                    "consumptions": Consumption.objects.filter(company=company).count(),
                }
                for company in Company.objects.order_by("name")
            },
        }
    sys.stdout.write("WORLD " + json.dumps(world) + "\n")


if __name__ == "__main__":
    main()
