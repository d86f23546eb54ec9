from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from cobee_django import state
from cobee_django.exceptions import NoTenantBound
from cobee_django.state import Tenant
from tests.testapp.models import Department


def test_nothing_bound_by_default():
    assert state.tenant_or_none() is None
    assert not state.is_unscoped()
    with pytest.raises(NoTenantBound):
        state.require_scope()
    with pytest.raises(NoTenantBound):
        state.require_tenant()


@pytest.mark.parametrize(
    "company_ids",
    [None, set(), [uuid.uuid4()], frozenset({"not-a-uuid"}), frozenset({str(uuid.uuid4())}), "abc"],
)
def test_tenant_rejects_anything_but_a_frozenset_of_uuids(company_ids):
    if company_ids == set():
        company_ids = set()  # a mutable set is refused too
    with pytest.raises(TypeError):
        Tenant(company_ids)


def test_tenant_rejects_a_bad_corporation():
    with pytest.raises(TypeError):
        Tenant(frozenset(), "corp")


def test_an_empty_tenant_reaches_nothing():
    tenant = Tenant(frozenset())
    assert not tenant.reaches(uuid.uuid4())
    assert tenant.single_company_id is None
    assert not tenant.reaches("garbage")


def test_a_tenant_reaches_its_companies_by_uuid_or_string_form():
    a, b = uuid.uuid4(), uuid.uuid4()
    tenant = Tenant(frozenset({a}))
    assert tenant.reaches(a)
    assert tenant.reaches(str(a))
    assert tenant.reaches(str(a).upper())
    assert not tenant.reaches(b)
    assert not tenant.reaches(str(b))
    assert not tenant.reaches(None)


def test_tenant_for_companies_reaches_exactly_those_companies():
    a, b = uuid.uuid4(), uuid.uuid4()
    principal = object()
    tenant = state.tenant_for_companies([a, str(b)], principal)
    assert tenant.company_ids == frozenset({a, b})
    assert tenant.corporation_id is None
    assert tenant.principal is principal
    assert state.tenant_for_companies([]).company_ids == frozenset()
    assert state.tenant_for_companies([a]).principal is None


@pytest.mark.parametrize("value", [None, 42, "not-a-uuid"])
def test_tenant_for_companies_refuses_non_ids_and_names_them(value):
    # The message says which argument was wrong: the only diagnostic a TypeError carries.
    with pytest.raises(TypeError, match=r"^A company id must be a UUID"):
        state.tenant_for_companies([uuid.uuid4(), value])


def test_unscoped_has_a_readable_repr():
    assert repr(state.UNSCOPED) == "UNSCOPED"


@pytest.mark.parametrize("value", [None, 42, "not-a-uuid", ""])
def test_for_company_refuses_non_ids(value):
    with pytest.raises(TypeError), state.for_company(value):
        pass
    assert state.tenant_or_none() is None


def test_for_company_binds_and_restores_even_on_error():
    a, b = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(RuntimeError), state.for_company(a) as outer:  # noqa: PT012
        assert state.tenant_or_none() == outer
        assert outer.company_ids == {a} and outer.single_company_id == a
        with state.for_company(str(b)):
            assert state.require_tenant().company_ids == {b}
        assert state.tenant_or_none() == outer
        raise RuntimeError
    assert state.tenant_or_none() is None


def test_unscoped_is_explicit_and_nests():
    a = uuid.uuid4()
    with state.unscoped():
        assert state.is_unscoped()
        assert state.tenant_or_none() is None
        assert state.require_scope() is state.UNSCOPED
        with pytest.raises(NoTenantBound):
            state.require_tenant()
        with state.for_company(a):
            assert not state.is_unscoped()
            assert state.require_scope().company_ids == {a}
        assert state.is_unscoped()
    assert not state.is_unscoped()


def test_for_tenant_needs_a_tenant():
    with pytest.raises(TypeError), state.for_tenant(None):
        pass


def test_deferred_resolver_is_asked_when_needed():
    a = uuid.uuid4()
    answers = [None, Tenant(frozenset({a}))]
    with state.deferred(lambda: answers[0]):
        with pytest.raises(NoTenantBound):
            state.require_scope()
        answers.pop(0)
        assert state.require_scope().company_ids == {a}
    assert state.tenant_or_none() is None
    with pytest.raises(TypeError), state.deferred(None):
        pass


def test_for_corporation_uses_membership(tenants):
    with state.for_corporation(tenants.corp) as tenant:
        assert tenant.company_ids == {tenants.a, tenants.b}
        assert tenant.corporation_id == tenants.corp
    with state.for_corporation(uuid.uuid4()) as tenant:
        assert tenant.company_ids == frozenset()  # an unknown corporation reaches nothing


def _seed(tenants):
    with state.unscoped():
        Department.objects.create(company_id=tenants.a, name="a-dept")
        Department.objects.create(company_id=tenants.c, name="c-dept")


@pytest.mark.django_db(transaction=True)
def test_two_threads_bound_to_different_tenants_at_once(tenants):
    _seed(tenants)
    barrier = threading.Barrier(2, timeout=10)
    seen = {}

    def work(company):
        try:
            with state.for_company(company):
                barrier.wait()  # both are bound now
                names = list(Department.objects.values_list("name", flat=True))
                barrier.wait()
                seen[company] = (names, state.require_tenant().company_ids)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(c,)) for c in (tenants.a, tenants.c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen[tenants.a] == (["a-dept"], {tenants.a})
    assert seen[tenants.c] == (["c-dept"], {tenants.c})


@pytest.mark.django_db(transaction=True)
def test_two_asyncio_tasks_bound_to_different_tenants_at_once(tenants):
    _seed(tenants)

    def names_and_close():
        try:
            return list(Department.objects.values_list("name", flat=True))
        finally:
            connection.close()

    async def work(company, bound, others_bound):
        with state.for_company(company):
            bound.set()
            await others_bound.wait()  # the other task is bound while we still are
            names = await sync_to_async(names_and_close)()
            count = await Department.objects.acount()
            await sync_to_async(lambda: connection.close())()
            return names, count, state.require_tenant().company_ids

    async def main():
        ea, ec = asyncio.Event(), asyncio.Event()
        return await asyncio.gather(work(tenants.a, ea, ec), work(tenants.c, ec, ea))

    (names_a, count_a, ids_a), (names_c, count_c, ids_c) = asyncio.run(main())
    assert (names_a, count_a, ids_a) == (["a-dept"], 1, {tenants.a})
    assert (names_c, count_c, ids_c) == (["c-dept"], 1, {tenants.c})
    assert state.tenant_or_none() is None


def test_a_new_thread_starts_with_nothing_bound():
    seen = []
    with state.for_company(uuid.uuid4()):
        t = threading.Thread(target=lambda: seen.append(state.tenant_or_none()))
        t.start()
        t.join()
    assert seen == [None]


def test_no_tenant_bound_names_every_tool_that_binds_one():
    from cobee_django.exceptions import NoTenantBound

    for call in (state.require_scope, state.require_tenant):
        with pytest.raises(NoTenantBound) as caught:
            call()
        message = str(caught.value)
        for tool in (
            "TenantMiddleware",
            "for_company()",
            "unscoped()",
            "TenantCommand",
            "with_tenant",
            "cobee_django.views.token_required",
            "cobee_django.contrib.celery.install(app)",
        ):
            assert tool in message, (call, tool)
        # Celery users are sent to the integration, not to the older task helpers.
        assert "cobee_django.tasks" not in message


def test_for_corporation_asks_the_lookup_membership_installs(tenants):
    from cobee_django import membership

    assert state._corporation_lookup == [membership.companies_of]
    saved = list(state._corporation_lookup)
    state._corporation_lookup.clear()
    try:
        with pytest.raises(RuntimeError, match="INSTALLED_APPS"), state.for_corporation(tenants.corp):
            pass
    finally:
        state._corporation_lookup[:] = saved
    with state.for_corporation(tenants.corp) as tenant:
        assert tenant.company_ids == {tenants.a, tenants.b}


def test_set_corporation_lookup_replaces_the_lookup():
    corporation, company = uuid.uuid4(), uuid.uuid4()
    saved = list(state._corporation_lookup)
    try:
        state.set_corporation_lookup(lambda corp: frozenset({company}) if corp == corporation else frozenset())
        assert len(state._corporation_lookup) == 1
        with state.for_corporation(corporation) as tenant:
            assert tenant.company_ids == {company}
            assert tenant.corporation_id == corporation
    finally:
        state._corporation_lookup[:] = saved
