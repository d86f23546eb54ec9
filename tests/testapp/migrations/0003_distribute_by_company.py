from django.db import migrations

from cobee_django.db.citus import DistributeTenantModel


class Migration(migrations.Migration):
    dependencies = [("testapp", "0002_normalize_emails")]

    operations = [
        DistributeTenantModel("Department"),
        DistributeTenantModel("Project"),
        DistributeTenantModel("Employee"),
        DistributeTenantModel("Badge"),
    ]
