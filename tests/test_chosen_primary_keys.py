"""A save with a chosen primary key tells nothing about other companies' rows (issue 20, item 7).

Sequential keys: a save that names a key no row of the bound tenant has is refused alike whether
another company holds it or it is free, so saves cannot enumerate which ids exist. UUID keys: a
save naming another company's UUID is refused, a free one inserts; that answers only for a UUID the
caller already knows (122 random bits), which docs/security.md states.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from cobee_django import state
from cobee_django.company_field import unscoped_rows
from cobee_django.exceptions import TenantViolation
from tests.rlsapp.models import Team
from tests.testapp.models import Department


@pytest.fixture
def rows(tenants):
    with state.for_company(tenants.b):
        taken = Department.objects.create(name="b's")
    with state.for_company(tenants.a):
        own = Department.objects.create(name="a's")
    free = max(taken.pk, own.pk) + 1000
    return tenants, taken.pk, own.pk, free


def refusal(write) -> str:
    """The exception a write raises (type and message): what a caller is told."""
    with pytest.raises(TenantViolation) as raised, transaction.atomic():
        write()
    return f"{type(raised.value).__name__}: {raised.value} / {raised.value.detail}"


WRITES = {
    "save() of a new row": lambda pk: Department(pk=pk, name="x").save(),
    "objects.create()": lambda pk: Department.objects.create(pk=pk, name="x"),
    "save(force_insert=True)": lambda pk: Department(pk=pk, name="x").save(force_insert=True),
    "a loaded row given the key": lambda pk: _loaded_with_pk(pk),
}


def _loaded_with_pk(pk: int) -> None:
    row = Department.objects.get(name="a's")
    row.pk = pk
    row.name = f"copy {pk}"  # not a duplicate of the row it was loaded as
    row.save()


@pytest.mark.parametrize("write", WRITES)
def test_a_sequential_key_is_refused_alike_taken_or_free(rows, write):
    tenants, taken, _own, free = rows
    with state.for_company(tenants.a):
        on_taken = refusal(lambda: WRITES[write](taken))
        on_free = refusal(lambda: WRITES[write](free))
    assert on_taken == on_free
    assert str(tenants.b) not in on_taken
    assert not unscoped_rows(Department).filter(pk=free).exists()
    assert unscoped_rows(Department).get(pk=taken).name == "b's"


def test_the_tenants_own_rows_and_new_rows_without_a_key_still_save(rows):
    tenants, _taken, own, _free = rows
    with state.for_company(tenants.a):
        row = Department.objects.get(pk=own)
        row.name = "renamed"
        row.save()
        new = Department.objects.create(name="new")
    assert unscoped_rows(Department).get(pk=own).name == "renamed"
    assert new.pk is not None


def test_unscoped_code_and_fixtures_may_choose_keys(rows, tmp_path):
    tenants, _taken, _own, free = rows
    with state.unscoped():
        Department.objects.create(pk=free, name="maintenance", company_id=tenants.c)
    path = tmp_path / "departments.json"
    fixture = [{"model": "testapp.department", "pk": free + 1, "fields": {"name": "loaded", "company": str(tenants.a)}}]
    path.write_text(json.dumps(fixture))
    call_command("with_tenant", "--company", str(tenants.a), "--", "loaddata", str(path), verbosity=0)
    assert unscoped_rows(Department).get(pk=free + 1).name == "loaded"


def test_uuid_keys_answer_only_for_a_known_id(tenants):
    with state.for_company(tenants.b):
        theirs = Team.objects.create(name="b's")
    with state.for_company(tenants.a):
        # Another company's UUID: refused (an UPDATE path would raise TenantViolation; the INSERT of
        # create() meets the primary key), never written over.
        with pytest.raises((TenantViolation, IntegrityError)), transaction.atomic():
            Team.objects.create(id=theirs.pk, name="x")
        fresh = Team.objects.create(id=uuid.uuid4(), name="mine")  # a UUID nobody has: inserts
    assert unscoped_rows(Team).get(pk=theirs.pk).name == "b's"
    assert unscoped_rows(Team).get(pk=fresh.pk).company_id == tenants.a
