from django.db import migrations

from cobee_django.db.citus import DistributeTenantModel


class Migration(migrations.Migration):
    dependencies = [("rlsapp", "0002_row_level_security")]

    operations = [
        DistributeTenantModel("Team"),
        DistributeTenantModel("Member"),
        DistributeTenantModel("Note"),
    ]
