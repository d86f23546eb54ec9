"""Membership: provisioning from verified tokens, the resolver setting, the directory import."""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings

from cobee_django import membership, state
from cobee_django.conf import user_settings
from cobee_django.models import Company, Corporation, _MembershipSource
from tests.testapp.auth import principal
from tests.testapp.resolvers import FIXED


def settings_with(**overrides):
    return override_settings(COBEE_DJANGO={**user_settings(), **overrides})


@pytest.fixture
def provisioning(settings):
    """The project opts in: its token issuer is its directory, so tokens record companies and links."""
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "PROVISION_MEMBERSHIP": True}


@pytest.fixture(autouse=True)
def _fresh_cache():
    membership._reset()
    yield
    membership._reset()


def test_a_token_with_both_ids_provisions_the_link_on_first_sight(db, provisioning):
    company, corp = uuid.uuid4(), uuid.uuid4()
    tenant = membership.tenant_for_principal(principal(company, corp, iat=1000))
    assert tenant.company_ids == {company} and tenant.corporation_id == corp
    row = Company.objects.get(pk=company)
    assert row.corporation_id == corp
    assert row.membership_source == _MembershipSource.TOKEN
    assert row.membership_asserted_at == datetime.datetime.fromtimestamp(1000, tz=datetime.timezone.utc)
    assert Corporation.objects.filter(pk=corp).exists()


def test_a_company_only_token_registers_the_company_without_a_corporation(db, provisioning):
    company = uuid.uuid4()
    assert membership.tenant_for_principal(principal(company)).company_ids == {company}
    assert Company.objects.get(pk=company).corporation_id is None


def test_what_was_recorded_is_not_written_again(db, provisioning, django_assert_num_queries):
    company, corp = uuid.uuid4(), uuid.uuid4()
    membership.record_token(principal(company, corp, iat=1000))
    with django_assert_num_queries(0):
        membership.record_token(principal(company, corp, iat=1000))
        membership.record_token(principal(company, corp, iat=900))  # older: nothing to learn


def test_the_newest_token_wins_when_a_company_moves(db, provisioning):
    company, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    membership.record_token(principal(company, first, iat=1000))
    membership.record_token(principal(company, second, iat=2000))
    assert Company.objects.get(pk=company).corporation_id == second
    membership._reset()  # another process, which never saw the newer token
    membership.record_token(principal(company, first, iat=1500))
    assert Company.objects.get(pk=company).corporation_id == second
    membership.record_token(principal(company, first, iat=3000))
    assert Company.objects.get(pk=company).corporation_id == first


def test_a_token_without_iat_links_only_unlinked_companies(db, provisioning):
    company, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    membership.record_token(principal(company, first, iat=None))
    assert Company.objects.get(pk=company).corporation_id == first
    membership.record_token(principal(company, second, iat=None))
    assert Company.objects.get(pk=company).corporation_id == first


def test_tokens_record_nothing_by_default(db):
    company, corp = uuid.uuid4(), uuid.uuid4()
    tenant = membership.tenant_for_principal(principal(company, corp, iat=1000))
    assert tenant.company_ids == {company}  # the token's own company is always granted
    assert not Company.objects.filter(pk=company).exists()
    assert not Corporation.objects.filter(pk=corp).exists()


def test_a_token_cannot_move_a_company_into_a_corporation_by_default(tenants, caplog):
    """The issue's Globex: a company created in code, a token naming it with another corporation."""
    globex = Company.objects.create(name="Globex")  # no link asserted: created in code
    iberia = tenants.corp
    with caplog.at_level(logging.WARNING, logger="cobee_django.membership"):
        tenant = membership.tenant_for_principal(principal(globex.pk, iberia, iat=time.time()))
        membership._recorded.clear()
        membership.tenant_for_principal(principal(globex.pk, iberia, iat=time.time()))  # logged once
    # The token reaches its own company (and the corporation's, as any client of it), and is logged...
    assert tenant.company_ids == {globex.pk, tenants.a, tenants.b}
    assert [r.event for r in caplog.records] == ["membership_disagreement"]
    assert str(globex.pk) in caplog.records[0].getMessage()
    # ...but the link is not recorded: every other client of the corporation still cannot reach Globex.
    globex.refresh_from_db()
    assert globex.corporation_id is None
    assert membership.tenant_for_principal(principal(tenants.a, iberia)).company_ids == {tenants.a, tenants.b}


def test_a_token_agreeing_with_the_directory_logs_nothing(tenants, caplog):
    with caplog.at_level(logging.WARNING, logger="cobee_django.membership"):
        membership.tenant_for_principal(principal(tenants.a, tenants.corp))
    assert caplog.records == []


def test_with_provisioning_on_the_token_links_the_company(tenants, provisioning):
    globex = Company.objects.create(name="Globex")
    tenant = membership.tenant_for_principal(principal(globex.pk, tenants.corp, iat=time.time()))
    assert tenant.company_ids == {globex.pk, tenants.a, tenants.b}
    globex.refresh_from_db()
    assert globex.corporation_id == tenants.corp


def test_a_corporation_token_reaches_every_company_of_its_corporation(tenants):
    tenant = membership.tenant_for_principal(principal(tenants.a, tenants.corp))
    assert tenant.company_ids == {tenants.a, tenants.b}
    assert state.Tenant(frozenset({tenants.a, tenants.b}), tenants.corp) == tenant


def test_the_resolver_setting_answers_instead_of_the_table(tenants):
    with settings_with(MEMBERSHIP_RESOLVER="tests.testapp.resolvers.fixed"):
        assert membership.companies_of(tenants.corp) == {FIXED}
        with state.for_corporation(tenants.corp) as tenant:
            assert tenant.company_ids == {FIXED}
    assert membership.companies_of(tenants.corp) == {tenants.a, tenants.b}


@pytest.mark.parametrize("path", ["tests.testapp.resolvers.broken", "tests.testapp.resolvers.garbage", "no.such.thing"])
def test_a_broken_resolver_is_a_configuration_error(db, path):
    with settings_with(MEMBERSHIP_RESOLVER=path), pytest.raises(ImproperlyConfigured):
        membership.companies_of(uuid.uuid4())


# --- load_directory ------------------------------------------------------------------------------


def test_load_directory_from_json(tenants, tmp_path):
    new_company, new_corp = uuid.uuid4(), uuid.uuid4()
    path = tmp_path / "directory.json"
    path.write_text(
        json.dumps(
            {
                "corporations": [{"id": str(new_corp), "name": "New group"}],
                "companies": [
                    {"id": str(new_company), "name": "New co", "corporationId": str(new_corp)},
                    {"id": str(tenants.b), "corporationId": str(new_corp)},  # moves
                    {"id": str(tenants.a), "corporationId": None},  # leaves its corporation
                ],
            }
        )
    )
    call_command("load_directory", str(path), stdout=(out := _Out()))
    assert "1 corporations and 3 companies (3 changed corporation)" in out.text
    assert Corporation.objects.get(pk=new_corp).name == "New group"
    assert Company.objects.get(pk=new_company).corporation_id == new_corp
    assert Company.objects.get(pk=tenants.b).corporation_id == new_corp
    assert Company.objects.get(pk=tenants.a).corporation_id is None
    assert Company.objects.get(pk=tenants.b).membership_source == _MembershipSource.IMPORT
    assert Company.objects.get(pk=tenants.c).corporation_id is None  # not listed: untouched
    assert Company.objects.get(pk=tenants.b).name == "Acme B"  # no name given: kept


def test_load_directory_from_csv(tenants, tmp_path):
    company = uuid.uuid4()
    path = tmp_path / "export.csv"
    path.write_text(
        "companyId,companyName,corporationId,corporationName\n"
        f"{company},CSV co,{tenants.other_corp},Renamed group\n"
        f"{tenants.c},,{tenants.other_corp},\n"
    )
    call_command("load_directory", str(path), stdout=_Out())
    assert Company.objects.get(pk=company).corporation_id == tenants.other_corp
    assert Company.objects.get(pk=tenants.c).corporation_id == tenants.other_corp
    assert Corporation.objects.get(pk=tenants.other_corp).name == "Renamed group"
    with state.for_corporation(tenants.other_corp) as tenant:
        assert tenant.company_ids == {company, tenants.c}


def test_load_directory_dry_run_writes_nothing(tenants, tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"companies": [{"id": str(tenants.c), "corporationId": str(tenants.corp)}]}))
    call_command("load_directory", str(path), "--dry-run", stdout=(out := _Out()))
    assert "Would load" in out.text
    assert Company.objects.get(pk=tenants.c).corporation_id is None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.json", "{not json", "not valid JSON"),
        ("d.json", "[]", '"companies" list'),
        ("d.json", '{"companies": [{"id": "nope"}]}', "companies[0]: id 'nope' is not a UUID"),
        ("d.json", '{"companies": [{"name": "x"}]}', "companies[0]: id is missing"),
        ("d.json", '{"companies": [{"id": "%s", "extra": 1}]}', "unknown keys extra"),
        ("d.json", '{"companies": [{"id": "%s", "corporationId": 5}]}', "corporationId must be a string"),
        ("d.csv", "a,b\n1,2\n", "CSV header must be exactly"),
        ("d.csv", "companyId,companyName,corporationId,corporationName\n%s,x,bad,\n", "line 2: corporationId 'bad'"),
        ("d.txt", "", "Cannot tell the format"),
    ],
)
def test_load_directory_reports_errors_and_writes_nothing(tenants, tmp_path, name, content, message):
    before = list(Company.objects.values_list("id", "corporation_id").order_by("id"))
    path = tmp_path / name
    good = uuid.uuid4()
    path.write_text(content.replace("%s", str(good)) if "%s" in content else content)
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call_command("load_directory", str(path))
    assert list(Company.objects.values_list("id", "corporation_id").order_by("id")) == before


def test_load_directory_refuses_a_file_that_contradicts_itself(tenants, tmp_path):
    path = tmp_path / "d.json"
    path.write_text(
        json.dumps(
            {
                "companies": [
                    {"id": str(tenants.c), "corporationId": str(tenants.corp)},
                    {"id": "bad"},
                    {"id": str(tenants.c), "corporationId": str(tenants.other_corp)},
                ]
            }
        )
    )
    with pytest.raises(CommandError) as info:
        call_command("load_directory", str(path))
    assert "companies[1]" in str(info.value) and "also listed at companies[0]" in str(info.value)
    assert Company.objects.get(pk=tenants.c).corporation_id is None


def test_load_directory_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_directory", str(tmp_path / "missing.json"))


class _Out:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass
