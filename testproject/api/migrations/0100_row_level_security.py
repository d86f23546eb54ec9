"""The second wall on the test project's tenant tables (PostgreSQL; nothing elsewhere).

Row-level security is enabled and forced whatever COBEE_ROW_LEVEL_SECURITY says: a superuser is
never held by it, so the demo and the tests (connected as one) see no difference, and a project
served as a plain role with the setting on is protected from its first request.
"""

from django.db import migrations

from cobee_django.db.operations import AddSameCompanyConstraint, EnableRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_distribute_by_company"),
    ]

    operations = [
        EnableRowLevelSecurity("BenefitModel"),
        EnableRowLevelSecurity("BenefitBagConfig"),
        EnableRowLevelSecurity("Employee"),
        EnableRowLevelSecurity("Consumption"),
        AddSameCompanyConstraint("BenefitBagConfig", "benefit_model"),
        AddSameCompanyConstraint("Employee", "model"),
        AddSameCompanyConstraint("Consumption", "employee"),
    ]
