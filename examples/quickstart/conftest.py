"""Companies and corporations for the tests.

They live in cobee_django.models and are not scoped (no tenant needs to be bound to create them):
``Corporation(id, name)`` and ``Company(id, name, corporation)``, ids are UUIDs made for you.
"""

import pytest

from cobee_django.models import Company, Corporation


@pytest.fixture
def corporation(db):
    return Corporation.objects.create(name="Acme Group")


@pytest.fixture
def company(corporation):
    return Company.objects.create(name="Acme Spain", corporation=corporation)


@pytest.fixture
def sister_company(corporation):
    return Company.objects.create(name="Acme Portugal", corporation=corporation)


@pytest.fixture
def other_company(db):
    return Company.objects.create(name="Globex")
