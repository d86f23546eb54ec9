"""Background tasks carry the tenant; management commands run for a company, a corporation, or unscoped."""

from __future__ import annotations

import io
import json
import threading
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from cobee_django import state, tasks
from cobee_django.exceptions import NoTenantBound, TenantError
from tests.testapp.models import Department


@pytest.fixture
def depts(tenants):
    with state.unscoped():
        for key in ("a", "b", "c"):
            Department.objects.create(company_id=getattr(tenants, key), name=f"{key}-dept")
    return tenants


def names():
    return sorted(Department.objects.values_list("name", flat=True))


def test_a_snapshot_round_trips_through_json(depts):
    with state.for_corporation(depts.corp):
        snapshot = json.loads(json.dumps(tasks.capture()))
    assert snapshot["corporation_id"] == str(depts.corp)
    with tasks.restore(snapshot) as tenant:
        assert tenant.company_ids == {depts.a, depts.b}
        assert names() == ["a-dept", "b-dept"]
    assert state.tenant_or_none() is None


def test_capture_refuses_with_nothing_or_everything(db):
    with pytest.raises(NoTenantBound):
        tasks.capture()
    with state.unscoped(), pytest.raises(TenantError):
        tasks.capture()


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"company_ids": None},
        {"company_ids": "abc"},
        {"company_ids": ["nope"]},
        {"company_ids": [], "corporation_id": 5},
    ],
)
def test_a_malformed_snapshot_is_refused(snapshot):
    with pytest.raises(TenantError), tasks.restore(snapshot):
        pass


def test_tenant_task_binds_what_was_captured_when_queued(depts):
    @tasks.tenant_task
    def job(prefix):
        return prefix + ",".join(names())

    with state.for_company(depts.c):
        queued = tasks.task_kwargs(prefix="> ")
    assert state.tenant_or_none() is None
    assert job(**queued) == "> c-dept"  # a worker runs it later, with nothing bound
    with pytest.raises(TenantError, match="without a tenant"):
        job(prefix="x")


@pytest.mark.django_db(transaction=True)
def test_carry_binds_in_another_thread(tenants):
    with state.unscoped():
        Department.objects.create(company_id=tenants.a, name="a-dept")
        Department.objects.create(company_id=tenants.c, name="c-dept")
    seen = []

    def work():
        try:
            seen.append(names())
        finally:
            connection.close()

    with state.for_company(tenants.a):
        carried = tasks.carry(work)
    thread = threading.Thread(target=carried)
    thread.start()
    thread.join()
    assert seen == [["a-dept"]]


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_tenant_commands_run_for_a_company_a_corporation_or_unscoped(depts):
    assert run("count_departments", "--company", str(depts.a)) == "1"
    assert run("count_departments", "--corporation", str(depts.corp), "--prefix", "n=") == "n=2"
    assert run("count_departments", "--unscoped") == "3"
    assert state.tenant_or_none() is None and not state.is_unscoped()


@pytest.mark.parametrize(
    "args",
    [[], ["--company", "nope"], ["--company", str(uuid.uuid4()), "--unscoped"]],
)
def test_tenant_commands_need_exactly_one_choice(depts, args):
    with pytest.raises(CommandError):
        run("count_departments", *args)


def test_with_tenant_runs_any_command_inside_a_binding(depts):
    dumped = json.loads(run("with_tenant", "--company", str(depts.b), "--", "dumpdata", "testapp.department"))
    assert [row["fields"]["name"] for row in dumped] == ["b-dept"]
    everything = json.loads(run("with_tenant", "--unscoped", "dumpdata", "testapp.department"))
    assert len(everything) == 3
    with pytest.raises(CommandError):
        run("with_tenant", "--company", str(depts.a))
