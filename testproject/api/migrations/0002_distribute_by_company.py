"""Citus: every API table distributed by company, the registry as reference tables.

On PostgreSQL without Citus, SQLite and MariaDB these operations do nothing.
"""

from django.db import migrations

from cobee_django.db.citus import CreateReferenceTable, DistributeTenantModel


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial"), ("cobee_django", "0002_staffidentity")]

    operations = [
        # Parents before children: the first one anchors the co-location group.
        DistributeTenantModel("BenefitModel"),
        DistributeTenantModel("BenefitBagConfig"),
        DistributeTenantModel("Employee"),
        DistributeTenantModel("Consumption"),
        # Then the registry they point at (a corporation before the companies that point at it).
        CreateReferenceTable("cobee_django.Corporation"),
        CreateReferenceTable("cobee_django.Company"),
    ]
