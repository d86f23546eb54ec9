from django.db import migrations

from cobee_django.db.operations import AddSameCompanyConstraint, EnableRowLevelSecurity


class Migration(migrations.Migration):
    dependencies = [
        ("rlsapp", "0001_initial"),
    ]

    # Note is left unprotected on purpose: the system checks must report it.
    operations = [
        EnableRowLevelSecurity("Team"),
        EnableRowLevelSecurity("Member"),
        AddSameCompanyConstraint("Member", "team"),
    ]
