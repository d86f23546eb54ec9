from django.db import migrations

from cobee_django.db.citus import DistributeTenantModel


class Migration(migrations.Migration):
    dependencies = [("testapp", "0002_normalize_emails")]

    operations = [
        DistributeTenantModel("Department"),
        DistributeTenantModel("Project"),
        # The scoping tests write cross-company links on purpose (raw updates of department), to
        # prove that reads never follow them; composite keys would refuse those rows outright.
        DistributeTenantModel("Employee", same_company_keys=False),
        DistributeTenantModel("Badge"),
    ]
