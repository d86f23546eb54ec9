"""A data migration over tenant rows: historical models are plain, so no tenant is needed."""

from django.db import migrations


def lowercase_emails(apps, schema_editor):
    Employee = apps.get_model("testapp", "Employee")
    for employee in Employee.objects.all():
        if employee.email != employee.email.lower():
            employee.email = employee.email.lower()
            employee.save(update_fields=["email"])


class Migration(migrations.Migration):
    dependencies = [("testapp", "0001_initial")]

    operations = [migrations.RunPython(lowercase_emails, migrations.RunPython.noop)]
