"""cobee_django.contrib.celery without a worker: the header's format, install(), eager mode, the fan-out.

The same behaviour against a real worker and Redis is in test_celery_worker.py.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import celery
import pytest
from celery.exceptions import Reject
from celery.signals import before_task_publish
from django.core.exceptions import ImproperlyConfigured

from cobee_django import state, tasks
from cobee_django.contrib import celery as cobee_celery
from cobee_django.exceptions import MalformedTenantHeader, NoTenantBound, TenantError
from testproject.api import tasks as api_tasks
from testproject.celery import app
from tests.testapp import celery_tasks

A = "6f1c3c52-0d7e-4b0e-9a53-0c4c1a0e8a11"
B = "0b2d9e43-2f55-4c1c-8a77-3d2e4f5a6b22"


@pytest.fixture
def eager():
    """Tasks run in the calling process, as a user's unit tests run them (see docs/celery.md)."""
    assert not app.conf.task_always_eager
    with cobee_celery.eager(app):
        yield app
    assert not app.conf.task_always_eager


def published_headers(**bound: Any) -> dict[str, Any]:
    """The headers our receiver leaves on a message published now (what a broker would get)."""
    headers: dict[str, Any] = {"id": "x", cobee_celery.HEADER: {"stale": True}}
    before_task_publish.send(sender="tests.whoami", body=(), headers=headers, properties={})
    return headers


# --- publishing ---------------------------------------------------------------------------------


def test_a_message_published_with_a_tenant_bound_carries_it():
    with state.for_tenant(state.Tenant(frozenset({uuid.UUID(B), uuid.UUID(A)}), uuid.UUID(A))):
        headers = published_headers()
    assert headers[cobee_celery.HEADER] == {"v": 1, "company_ids": sorted([A, B]), "corporation_id": A}


@pytest.mark.parametrize("context", ["nothing", "unscoped"])
def test_a_message_published_without_a_tenant_carries_none_even_if_one_was_set_before(context):
    if context == "unscoped":
        with state.unscoped():
            headers = published_headers()
    else:
        headers = published_headers()
    assert cobee_celery.HEADER not in headers


def test_a_tenant_too_large_for_one_message_is_refused_when_sending(eager):
    many = frozenset(uuid.uuid4() for _ in range(tasks.MAX_COMPANIES + 1))
    with state.for_tenant(state.Tenant(many)):
        with pytest.raises(TenantError, match="at most"):
            celery_tasks.whoami.delay()
        with pytest.raises(TenantError, match="at most"):
            celery_tasks.whoami.s().apply_async()
        # A publication that bypasses the task (send_task) goes out with no tenant: it fails closed.
        assert cobee_celery.HEADER not in published_headers()


# --- the header, parsed strictly on the worker ----------------------------------------------------


class Request:
    """A worker's request for a message carrying ``header`` (not eager, not a direct call)."""

    def __init__(self, header: Any = None) -> None:
        self.is_eager = False
        self.id = "task-id"
        if header is not None:
            setattr(self, cobee_celery.HEADER, header)


def good(**changes: Any) -> dict[str, Any]:
    return {"v": 1, "company_ids": [A], "corporation_id": None, **changes}


@pytest.mark.parametrize(
    "header",
    [
        "6f1c3c52-0d7e-4b0e-9a53-0c4c1a0e8a11",
        [A],
        {},
        good(v=2),
        good(v=True),
        good(v="1"),
        good(extra=1),
        good(company_ids=A),
        good(company_ids=None),
        good(company_ids=[A.upper()]),
        good(company_ids=["{" + A + "}"]),
        good(company_ids=["urn:uuid:" + A]),
        good(company_ids=[A.replace("-", "")]),
        good(company_ids=[A, A]),
        good(company_ids=[1]),
        good(company_ids=[[A]]),
        good(company_ids=[str(uuid.uuid4()) for _ in range(tasks.MAX_COMPANIES + 1)]),
        good(corporation_id=5),
        good(corporation_id=""),
        good(corporation_id=B.upper()),
    ],
)
def test_a_malformed_header_is_refused(header):
    with pytest.raises(MalformedTenantHeader) as raised:
        cobee_celery._tenant_of_request(Request(header))
    assert str(raised.value) == cobee_celery.REJECTED_MESSAGE  # constant: never echoes the header


def test_a_well_formed_header_is_the_tenant():
    assert cobee_celery._tenant_of_request(Request()) is None
    tenant = cobee_celery._tenant_of_request(Request(good(company_ids=[A, B], corporation_id=B)))
    assert tenant == state.Tenant(frozenset({uuid.UUID(A), uuid.UUID(B)}), uuid.UUID(B))
    assert cobee_celery._tenant_of_request(Request(good(company_ids=[]))) == state.Tenant(frozenset())


def test_a_task_with_a_malformed_header_is_rejected_before_its_body_runs(caplog):
    caplog.set_level(logging.ERROR, logger="cobee_django.celery")
    forged = good(company_ids=["not-a-uuid" * 100])
    celery_tasks.whoami.push_request(id="the-task-id", called_directly=False, **{cobee_celery.HEADER: forged})
    try:
        with pytest.raises(Reject) as raised:
            celery_tasks.whoami()
    finally:
        celery_tasks.whoami.pop_request()
    assert raised.value.requeue is False
    assert [r.getMessage() for r in caplog.records] == [f"{cobee_celery.REJECTED_MESSAGE} task_id=the-task-id"]
    record = caplog.records[0]
    assert (record.event, record.reason, record.task_id) == ("task_rejected", "malformed_tenant_header", "the-task-id")
    assert "not-a-uuid" not in caplog.text


def test_the_worker_binds_the_header_and_unbinds_after_success_and_failure():
    header = {cobee_celery.HEADER: good()}
    celery_tasks.whoami.push_request(id="1", called_directly=False, **header)
    try:
        assert celery_tasks.whoami()["companies"] == [A]
    finally:
        celery_tasks.whoami.pop_request()
    assert state.tenant_or_none() is None
    celery_tasks.fail.push_request(id="2", called_directly=False, **header)
    try:
        with pytest.raises(RuntimeError, match=A):
            celery_tasks.fail()
    finally:
        celery_tasks.fail.pop_request()
    assert state.tenant_or_none() is None


def test_a_task_called_as_a_function_keeps_the_callers_tenant():
    with state.for_company(A):
        assert celery_tasks.whoami()["companies"] == [A]


# --- install() -----------------------------------------------------------------------------------


def test_install_makes_every_task_of_the_app_a_tenant_task():
    plain = celery.Celery("plain", set_as_current=False)
    assert cobee_celery.install(plain) is plain

    @plain.task
    def job() -> None: ...

    assert isinstance(job, cobee_celery.TenantTask)
    assert issubclass(app.Task, cobee_celery.TenantTask)
    cobee_celery.install(plain)  # idempotent


def test_install_keeps_a_custom_base_class():
    class Audited(celery.Task):
        audited = True

    custom = celery.Celery("custom", task_cls=Audited, set_as_current=False)
    cobee_celery.install(custom)

    @custom.task
    def job() -> None: ...

    assert isinstance(job, cobee_celery.TenantTask)
    assert isinstance(job, Audited)


def test_install_after_the_first_task_is_refused():
    late = celery.Celery("late", set_as_current=False)

    @late.task
    def job() -> None: ...

    assert job.name  # evaluating the task creates the app's base class
    with pytest.raises(ImproperlyConfigured, match="before the app's first task"):
        cobee_celery.install(late)


# --- eager mode ----------------------------------------------------------------------------------


def test_eager_tasks_get_the_senders_tenant(eager):
    with state.for_company(A):
        assert celery_tasks.whoami.delay().get()["companies"] == [A]
        chained = (celery_tasks.step.s() | celery_tasks.step.s()).delay().get()
    assert [s["companies"] for s in chained] == [[A], [A]]
    assert celery_tasks.whoami.delay().get()["companies"] is None
    assert state.tenant_or_none() is None


def test_an_eager_task_sent_inside_unscoped_runs_with_nothing_bound(eager):
    with state.unscoped():
        result = celery_tasks.whoami.delay().get()
        assert state.is_unscoped()
    assert result["companies"] is None
    assert result["unscoped"] is False  # as on a worker: unscoped() is never carried


def test_an_eager_task_with_no_tenant_fails_closed(eager, db):
    assert celery_tasks.query_employees.delay().get()["error"] == "NoTenantBound"
    with pytest.raises(NoTenantBound):
        api_tasks.build_payroll_report.delay("2026-10").get()


def test_eager_retries_keep_the_tenant():
    with state.for_company(B):
        result = celery_tasks.retry_once.apply().get()  # retried eagerly (errors not propagated)
    assert (result["companies"], result["retries"]) == ([B], 1)


# --- the payroll report of the test project --------------------------------------------------------


@pytest.fixture
def payroll(tenants):
    import datetime

    from testproject.api.models import Consumption, Employee

    with state.unscoped():
        ana = Employee.objects.create(
            company_id=tenants.a, email="ana@a.example", legal_id="1", name="Ana", surname="A"
        )
        bea = Employee.objects.create(
            company_id=tenants.a, email="bea@a.example", legal_id="2", name="Bea", surname="B"
        )
        other = Employee.objects.create(company_id=tenants.b, email="x@b.example", legal_id="1", name="X", surname="Y")
        for employee, amount, cycle in [
            (ana, 1000, "2026-10"),
            (ana, 250, "2026-10"),
            (bea, 700, "2026-10"),
            (bea, 9999, "2026-11"),
            (other, 5000, "2026-10"),
        ]:
            Consumption.objects.create(
                company_id=employee.company_id,
                employee=employee,
                category="meal-benefit",
                amount_in_cents=amount,
                payroll=cycle,
                date=datetime.date(2026, 10, 15),
            )
    return tenants, ana, bea


def test_the_payroll_report_totals_one_companys_cycle(eager, payroll):
    tenants, ana, bea = payroll
    with state.for_company(tenants.a):
        report = api_tasks.build_payroll_report.delay("2026-10").get()
    assert report["companyId"] == str(tenants.a)
    assert report["total"] == {"amountInCents": 1950, "currency": "EUR"}
    by_employee = {e["employeeId"]: (e["consumptions"], e["total"]["amountInCents"]) for e in report["employees"]}
    assert by_employee == {str(ana.pk): (2, 1250), str(bea.pk): (1, 700)}


def test_the_payroll_report_needs_one_company(eager, payroll):
    tenants, _, _ = payroll
    with state.for_corporation(tenants.corp), pytest.raises(ValueError, match="one company"):
        api_tasks.build_payroll_report.delay("2026-10").get()


# --- fan-out -------------------------------------------------------------------------------------


def test_fan_out_sends_one_task_per_company_of_the_corporation(eager, tenants):
    results = cobee_celery.fan_out_to_companies(celery_tasks.whoami, tenants.corp)
    assert {c: r.get()["companies"] for c, r in results.items()} == {
        tenants.a: [str(tenants.a)],
        tenants.b: [str(tenants.b)],
    }


def test_fan_out_from_a_tenant_reaches_only_its_own_companies(eager, tenants):
    with state.for_corporation(tenants.corp):
        assert set(cobee_celery.fan_out_to_companies(celery_tasks.whoami, tenants.corp)) == {tenants.a, tenants.b}
    with state.for_company(tenants.a), pytest.raises(TenantError, match="does not reach"):
        cobee_celery.fan_out_to_companies(celery_tasks.whoami, tenants.corp)


def test_fan_out_to_every_company_is_loud_and_refused_to_a_tenant(eager, tenants, caplog):
    caplog.set_level(logging.WARNING, logger="cobee_django.celery")
    results = cobee_celery.fan_out_to_every_company_unscoped(celery_tasks.whoami)
    assert {c: r.get()["companies"] for c, r in results.items()} == {
        c: [str(c)] for c in (tenants.a, tenants.b, tenants.c)
    }
    assert "to every company (3), unscoped" in caplog.text
    with state.for_company(tenants.a), pytest.raises(TenantError, match="while a tenant is bound"):
        cobee_celery.fan_out_to_every_company_unscoped(celery_tasks.whoami)


# --- the kwarg snapshot (queues other than Celery) shares the strict format -------------------------


def test_a_kwarg_snapshot_made_before_the_version_field_still_restores():
    with tasks.restore({"company_ids": [A], "corporation_id": None}) as tenant:
        assert tenant.company_ids == {uuid.UUID(A)}


def test_a_kwarg_snapshot_is_parsed_as_strictly_as_the_header():
    with pytest.raises(TenantError), tasks.restore(good(company_ids=[A.upper()])):
        pass
    with state.for_company(A):
        assert tasks.task_kwargs()[tasks.TENANT_KWARG] == good()


def test_delay_on_commit_carries_the_tenant_bound_when_it_was_called(eager, db, django_capture_on_commit_callbacks):
    celery_tasks.SEEN.clear()
    with django_capture_on_commit_callbacks() as callbacks, state.for_company(A):
        celery_tasks.remember.delay_on_commit()
        celery_tasks.remember.apply_async_on_commit()
    assert celery_tasks.SEEN == []
    for callback in callbacks:
        callback()  # the commit, after the binding has ended
    assert [seen["companies"] for seen in celery_tasks.SEEN] == [[A], [A]]
    assert state.tenant_or_none() is None


# --- tasks whose base class is not a TenantTask ------------------------------------------------------


def test_a_task_of_another_base_is_bound_by_the_signals_and_never_with_a_malformed_header(caplog):
    other = celery.Celery("other", set_as_current=False)  # install() not called

    @other.task
    def job() -> None: ...

    assert not isinstance(job, cobee_celery.TenantTask)
    for header, expected in [(good(), state.Tenant(frozenset({uuid.UUID(A)}))), ({"v": 1}, None)]:
        job.push_request(id="t", called_directly=False, **{cobee_celery.HEADER: header})
        try:
            cobee_celery._bind_for_task(task=job)
            assert state.tenant_or_none() == expected
            assert not state.is_unscoped()
        finally:
            cobee_celery._unbind_after_task(task=job)
            job.pop_request()
        assert state.tenant_or_none() is None
    assert [r.getMessage() for r in caplog.records] == [f"{cobee_celery.UNBOUND_MESSAGE} task_id=t"]
