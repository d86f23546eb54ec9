"""The tenant-aware admin: the registry admins and TenantAdminMixin (cobee_django.admin)."""

from __future__ import annotations

import re

import django
import pytest
from django.urls import reverse

from cobee_django.models import StaffGrant, _GrantSource
from tests.testapp.admin_world import grant, make_staff, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


# The registry and the grants: superusers only.

REGISTRY_PAGES = [
    "admin:cobee_django_corporation_changelist",
    "admin:cobee_django_company_changelist",
    "admin:cobee_django_staffgrant_changelist",
    "admin:cobee_django_staffgrant_add",
    "admin:cobee_django_staffidentity_changelist",
]


@pytest.mark.parametrize("page", REGISTRY_PAGES)
def test_superuser_manages_the_registry(world, client, page):
    client.force_login(make_staff("root", superuser=True))
    assert client.get(reverse(page)).status_code == 200


@pytest.mark.parametrize("page", REGISTRY_PAGES)
def test_staff_cannot_see_the_registry_even_with_django_permissions(world, client, page):
    user = make_staff(
        "op",
        perms=("view_staffgrant", "add_staffgrant", "change_staffgrant", "view_company", "view_corporation"),
    )
    grant(user, world.acme)
    client.force_login(user)
    assert client.get(reverse(page)).status_code == 403


def test_registry_is_not_listed_for_staff(world, client):
    user = make_staff("op", perms=("view_staffgrant",))
    grant(user, world.acme)
    client.force_login(user)
    assert "cobee_django/staffgrant" not in client.get(reverse("admin:index")).content.decode()


def test_grant_edited_by_a_superuser_is_an_admin_grant(world, client):
    client.force_login(make_staff("root", superuser=True))
    operator = make_staff("op")
    existing = grant(operator, world.acme_north, source=_GrantSource.OIDC)
    response = client.post(
        reverse("admin:cobee_django_staffgrant_change", args=[existing.pk]),
        {"user": operator.pk, "company": str(world.acme_south.id), "corporation": "", "source": "oidc"},
    )
    assert response.status_code == 302, response.content.decode()
    existing.refresh_from_db()
    assert existing.company_id == world.acme_south.id
    assert existing.source == _GrantSource.ADMIN


def test_grant_needs_exactly_one_target(world, client):
    client.force_login(make_staff("root", superuser=True))
    operator = make_staff("op")
    response = client.post(
        reverse("admin:cobee_django_staffgrant_add"),
        {"user": operator.pk, "company": str(world.acme_north.id), "corporation": str(world.acme.id)},
    )
    assert response.status_code == 200  # the form is shown again with the error
    assert not StaffGrant.objects.exists()


@pytest.mark.parametrize("field", ["company", "corporation"])
@pytest.mark.parametrize("value", ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000dead"])
def test_a_malformed_or_unknown_grant_target_is_a_form_error(world, client, field, value):
    client.force_login(make_staff("root", superuser=True))
    operator = make_staff("op")
    response = client.post(
        reverse("admin:cobee_django_staffgrant_add"),
        {"user": operator.pk, "company": "", "corporation": "", field: value},
    )
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not StaffGrant.objects.exists()


def test_staff_identities_are_read_only(world, client):
    client.force_login(make_staff("root", superuser=True))
    assert client.get(reverse("admin:cobee_django_staffidentity_add")).status_code == 403


def test_switcher_template_order_is_checked(settings):
    from django.core.checks import run_checks

    from cobee_django.checks import admin_template_warnings

    assert not [m for m in run_checks() if m.id == "cobee_django.W001"]
    apps = [a for a in settings.INSTALLED_APPS if a != "cobee_django"]
    assert [m.id for m in admin_template_warnings([*apps, "cobee_django"])] == ["cobee_django.W001"]
    assert admin_template_warnings(["cobee_django.apps.CobeeDjangoConfig", *apps]) == []
    assert admin_template_warnings([a for a in apps if a != "django.contrib.admin"] + ["cobee_django"]) == []


# TenantAdminMixin, on the test app's tenant models (tests/testapp/adminsite.py).

tenant_admin = pytest.mark.urls("tests.testapp.adminsite")
EMPLOYEE_PERMS = tuple(
    f"{action}_{model}"
    for action in ("view", "add", "change", "delete")
    for model in ("employee", "department", "project", "badge", "ledger", "ledgerentry")
)


@pytest.fixture
def data(world):
    """Two companies of Acme with look-alike rows, and a Globex company."""
    from cobee_django.state import unscoped
    from tests.testapp.models import Department, Employee, Project

    rows = {}
    with unscoped():
        for company, tag in ((world.acme_north, "north"), (world.acme_south, "south"), (world.globex_one, "globex")):
            department = Department.objects.create(company=company, name=f"{tag}-dept")
            project = Project.objects.create(company=company, name=f"{tag}-project")
            employee = Employee.objects.create(
                company=company, email=f"ann@{tag}.test", name=f"Ann {tag}", department=department
            )
            employee.projects.add(project)
            rows[tag] = {"department": department, "project": project, "employee": employee}
    return rows


@pytest.fixture
def operator(world, client):
    """An Acme operator with model permissions, working on Acme North."""
    user = make_staff("op", perms=EMPLOYEE_PERMS)
    grant(user, world.acme)
    client.force_login(user)
    use(client, f"company:{world.acme_north.id}")
    return user


def use(client, key):
    response = client.post(reverse("cobee_django:switch_tenant"), {"tenant": key})
    assert response.status_code == 302


def options(body, name):
    """The option values of the form's <select name=...>."""
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', body, re.S)
    assert match, f"no select {name}"
    return [v for v in re.findall(r'<option value="([^"]*)"', match.group(1)) if v]


def page(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@tenant_admin
def test_changelist_follows_the_active_company(world, data, operator, client):
    url = reverse("admin:testapp_employee_changelist")
    body = page(client, url)
    assert "ann@north.test" in body and "ann@south.test" not in body and "ann@globex.test" not in body
    assert "1 employee" in body
    use(client, f"company:{world.acme_south.id}")
    body = page(client, url)
    assert "ann@south.test" in body and "ann@north.test" not in body
    use(client, f"corporation:{world.acme.id}")
    body = page(client, url)
    assert "ann@south.test" in body and "ann@north.test" in body and "ann@globex.test" not in body
    assert "2 employees" in body


@tenant_admin
def test_search_and_its_total_stay_in_the_company(world, data, operator, client):
    from cobee_django.state import for_company
    from tests.testapp.models import Employee

    with for_company(world.acme_north.id):
        Employee.objects.create(email="bob@north.test", name="Bob")
    body = page(client, reverse("admin:testapp_employee_changelist"), q="ann")
    assert "ann@north.test" in body and "ann@globex.test" not in body and "bob@north.test" not in body
    assert "1 result" in body
    assert "2 total" in body


@tenant_admin
def test_list_filter_choices_are_the_companys(world, data, operator, client):
    body = page(client, reverse("admin:testapp_employee_changelist"))
    assert "north-dept" in body
    assert "south-dept" not in body and "globex-dept" not in body
    assert "Globex One" not in body and "Lonely" not in body


@tenant_admin
@pytest.mark.parametrize("view", ["change", "delete", "history"])
@pytest.mark.parametrize("other", ["south", "globex"])
def test_another_companys_object_is_404(world, data, operator, client, view, other):
    url = reverse(f"admin:testapp_employee_{view}", args=[data[other]["employee"].pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"post": "yes", "email": "taken@x.test"}).status_code == 404
    from cobee_django.state import unscoped
    from tests.testapp.models import Employee

    with unscoped():
        assert Employee.objects.filter(pk=data[other]["employee"].pk, email=f"ann@{other}.test").exists()


@tenant_admin
def test_missing_object_is_404_not_a_redirect(world, data, operator, client):
    assert client.get(reverse("admin:testapp_employee_change", args=[999999])).status_code == 404


@tenant_admin
def test_own_object_opens_and_saves(world, data, operator, client):
    employee = data["north"]["employee"]
    url = reverse("admin:testapp_employee_change", args=[employee.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "email": "ann@north.test",
            "name": "Ann Renamed",
            "salary": "5",
            "department": str(data["north"]["department"].pk),
            "projects": [str(data["north"]["project"].pk)],
            "badge-TOTAL_FORMS": "0",
            "badge-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    from cobee_django.state import unscoped

    with unscoped():
        employee.refresh_from_db()
    assert employee.name == "Ann Renamed"
    assert employee.company_id == world.acme_north.id


def add_employee(client, **fields):
    form = {
        "email": "new@north.test",
        "name": "New",
        "salary": "1",
        "badge-TOTAL_FORMS": "0",
        "badge-INITIAL_FORMS": "0",
    }
    form.update(fields)
    return client.post(reverse("admin:testapp_employee_add"), form)


def employees_named(email):
    from cobee_django.state import unscoped
    from tests.testapp.models import Employee

    with unscoped():
        return list(Employee.objects.filter(email=email))


@tenant_admin
def test_new_object_gets_the_active_company_whatever_is_posted(world, data, operator, client):
    response = add_employee(client, company=str(world.globex_one.id))
    assert response.status_code == 302, response.content.decode()[:3000]
    [created] = employees_named("new@north.test")
    assert created.company_id == world.acme_north.id


@tenant_admin
def test_add_form_shows_the_company_fixed(world, data, operator, client):
    body = page(client, reverse("admin:testapp_employee_add"), company=str(world.globex_one.id))
    assert options(body, "company") == [str(world.acme_north.id)]
    assert re.search(r'<select[^>]*name="company"[^>]*disabled', body)


@tenant_admin
def test_corporation_active_means_choosing_one_of_its_companies(world, data, operator, client):
    use(client, f"corporation:{world.acme.id}")
    body = page(client, reverse("admin:testapp_employee_add"))
    assert sorted(options(body, "company")) == sorted([str(world.acme_north.id), str(world.acme_south.id)])
    refused = add_employee(client, email="x@globex.test", company=str(world.globex_one.id))
    assert refused.status_code == 200
    assert employees_named("x@globex.test") == []
    accepted = add_employee(client, email="x@south.test", company=str(world.acme_south.id))
    assert accepted.status_code == 302
    assert employees_named("x@south.test")[0].company_id == world.acme_south.id


@tenant_admin
def test_per_company_uniqueness_is_a_form_error(world, data, operator, client):
    response = add_employee(client, email="ann@north.test")
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    # The same email in another company is fine.
    use(client, f"company:{world.acme_south.id}")
    assert add_employee(client, email="ann@north.test").status_code == 302


@tenant_admin
def test_foreign_key_and_many_to_many_choices_are_the_companys(world, data, operator, client):
    body = page(client, reverse("admin:testapp_employee_add"))
    assert options(body, "projects") == [str(data["north"]["project"].pk)]
    response = add_employee(
        client,
        department=str(data["globex"]["department"].pk),
        projects=[str(data["south"]["project"].pk)],
    )
    assert response.status_code == 200  # "Select a valid choice"
    assert employees_named("new@north.test") == []


@tenant_admin
def test_autocomplete_lists_only_the_companys_rows(world, data, operator, client):
    answer = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "testapp", "model_name": "employee", "field_name": "department", "term": "dept"},
    ).json()
    assert [r["text"] for r in answer["results"]] == ["north-dept"]


@tenant_admin
def test_raw_id_lookup_and_label_stay_in_the_company(world, data, operator, client):
    body = page(client, reverse("admin:testapp_employee_changelist"), _popup="1", _to_field="id")
    assert "ann@north.test" in body and "ann@south.test" not in body
    response = client.post(
        reverse("admin:testapp_badge_add"), {"employee": str(data["south"]["employee"].pk), "code": "B1"}
    )
    assert response.status_code == 200  # another company's employee is not a valid choice
    from cobee_django.state import unscoped
    from tests.testapp.models import Badge

    with unscoped():
        assert not Badge.objects.exists()


@tenant_admin
def test_bulk_action_touches_only_the_companys_rows(world, data, operator, client):
    ids = [str(data[tag]["employee"].pk) for tag in ("north", "south", "globex")]
    response = client.post(
        reverse("admin:testapp_employee_changelist"),
        {"action": "give_raise", "_selected_action": ids, "index": "0"},
    )
    assert response.status_code == 302
    from cobee_django.state import unscoped
    from tests.testapp.models import Employee

    with unscoped():
        salaries = {e.email: e.salary for e in Employee.objects.all()}
    assert salaries == {"ann@north.test": 1, "ann@south.test": 0, "ann@globex.test": 0}


@tenant_admin
def test_delete_selected_spares_other_companies(world, data, operator, client):
    ids = [str(data[tag]["employee"].pk) for tag in ("north", "south", "globex")]
    client.post(
        reverse("admin:testapp_employee_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    from cobee_django.state import unscoped
    from tests.testapp.models import Employee

    with unscoped():
        assert sorted(Employee.objects.values_list("email", flat=True)) == ["ann@globex.test", "ann@south.test"]


@tenant_admin
def test_inline_rows_get_the_parents_company(world, data, operator, client):
    employee = data["north"]["employee"]
    response = client.post(
        reverse("admin:testapp_employee_change", args=[employee.pk]),
        {
            "email": employee.email,
            "name": employee.name,
            "salary": "0",
            "badge-TOTAL_FORMS": "1",
            "badge-INITIAL_FORMS": "0",
            "badge-0-code": "NB-1",
            "badge-0-company": str(world.globex_one.id),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    from cobee_django.state import unscoped
    from tests.testapp.models import Badge

    with unscoped():
        badge = Badge.objects.get(code="NB-1")
    assert badge.company_id == world.acme_north.id


@tenant_admin
@pytest.mark.parametrize("name", ["changelist", "add"])
def test_staff_without_grant_gets_a_clear_403(world, data, client, name):
    user = make_staff("nobody", perms=EMPLOYEE_PERMS)
    client.force_login(user)
    response = client.get(reverse(f"admin:testapp_employee_{name}"))
    assert response.status_code == 403
    assert "may not manage any company" in response.content.decode()


@tenant_admin
def test_staff_without_grant_gets_403_on_objects_too(world, data, client):
    client.force_login(make_staff("nobody", perms=EMPLOYEE_PERMS))
    url = reverse("admin:testapp_employee_change", args=[data["north"]["employee"].pk])
    assert client.get(url).status_code == 403
    assert client.get(reverse("admin:index")).status_code == 200


@tenant_admin
def test_tampered_session_cannot_widen_the_changelist(world, data, operator, client):
    session = client.session
    session["cobee_django_active_tenant"] = f"corporation:{world.globex.id}"
    session.save()
    body = page(client, reverse("admin:testapp_employee_changelist"))
    assert "ann@globex.test" not in body


@tenant_admin
def test_revoked_grant_closes_the_company_on_the_next_request(world, data, operator, client):
    StaffGrant.objects.filter(user=operator).delete()
    assert client.get(reverse("admin:testapp_employee_changelist")).status_code == 403


@tenant_admin
def test_superuser_reaches_any_company_through_the_switcher(world, data, client):
    client.force_login(make_staff("root", superuser=True))
    use(client, f"company:{world.globex_one.id}")
    body = page(client, reverse("admin:testapp_employee_changelist"))
    assert "ann@globex.test" in body and "ann@north.test" not in body


@tenant_admin
@pytest.mark.skipif(django.VERSION < (5, 0), reason="list filter facets came with Django 5.0")
def test_filter_facet_counts_stay_in_the_tenant(world, data, operator, client):
    from cobee_django.state import for_company
    from tests.testapp.models import Employee

    with for_company(world.acme_south.id):
        Employee.objects.create(email="bob@south.test")
    use(client, f"corporation:{world.acme.id}")
    body = page(client, reverse("admin:testapp_employee_changelist"), _facets="True")
    assert "Acme North (1)" in body
    assert "Acme South (2)" in body
    assert "Globex One" not in body.split('id="changelist-filter"')[1]


@tenant_admin
def test_list_editable_cannot_reach_another_companys_row(world, data, operator, client):
    own, other = data["north"]["project"], data["globex"]["project"]
    response = client.post(
        reverse("admin:testapp_project_changelist"),
        {
            "form-TOTAL_FORMS": "2",
            "form-INITIAL_FORMS": "2",
            "form-0-id": str(own.pk),
            "form-0-name": "renamed",
            "form-1-id": str(other.pk),
            "form-1-name": "hacked",
            "_save": "Save",
        },
    )
    assert response.status_code in (200, 302)
    from cobee_django.state import unscoped
    from tests.testapp.models import Project

    with unscoped():
        assert Project.objects.get(pk=other.pk).name == "globex-project"


def test_mixin_on_a_model_without_its_company_field_fails_the_checks():
    from django.contrib.admin import AdminSite

    from cobee_django.admin import TenantModelAdmin
    from cobee_django.models import Corporation
    from tests.testapp.models import Employee

    class Wrong(TenantModelAdmin):
        pass

    class Renamed(TenantModelAdmin):
        tenant_field = "owner"

    assert [e.id for e in Wrong(Corporation, AdminSite()).check()] == ["cobee_django.E030"]
    assert [e.id for e in Renamed(Employee, AdminSite()).check()] == ["cobee_django.E030"]
    assert Wrong(Employee, AdminSite()).check() == []


# "View on site" (admin:view_on_site): loaded through the scoped queryset, one answer for the rest.


@pytest.fixture
def ledgers(world):
    """A ledger per company, with one entry each: a model whose tenant field is ``owner``."""
    from tests.testapp.models import Ledger, LedgerEntry

    rows = {}
    for company, tag in ((world.acme_north, "north"), (world.acme_south, "south"), (world.globex_one, "globex")):
        ledger = Ledger.objects.create(owner=company, name=f"{tag}-ledger")
        LedgerEntry.objects.create(owner=company, ledger=ledger, label=f"{tag}-entry")
        rows[tag] = ledger
    return rows


def view_on_site(client, model, object_id):
    from django.contrib.contenttypes.models import ContentType

    content_type = ContentType.objects.get_for_model(model)
    return client.get(reverse("admin:view_on_site", args=[content_type.pk, object_id]))


@tenant_admin
@pytest.mark.parametrize("kind", ["department", "ledger"])
def test_view_on_site_answers_the_same_for_another_companys_object_and_a_missing_one(
    world, data, ledgers, operator, client, kind
):
    from tests.testapp.models import Department, Ledger

    model = {"department": Department, "ledger": Ledger}[kind]
    objects = {tag: data[tag]["department"] if kind == "department" else ledgers[tag] for tag in data}
    own = view_on_site(client, model, objects["north"].pk)
    assert own.status_code == 302
    assert own["Location"].endswith(objects["north"].get_absolute_url())
    missing = view_on_site(client, model, 999999)
    assert missing.status_code == 404
    for other in ("south", "globex"):
        answer = view_on_site(client, model, objects[other].pk)
        assert (answer.status_code, answer.content) == (404, missing.content)


@tenant_admin
@pytest.mark.parametrize(
    "path", ["r/999999/1/", "r/abc/1/", "r/{department}/abc/", "r/{company}/not-a-uuid/", "r/{company}/{north}/"]
)
def test_view_on_site_refuses_malformed_and_unknown_ids_with_a_404(world, data, operator, client, path):
    from django.contrib.contenttypes.models import ContentType

    from cobee_django.models import Company
    from tests.testapp.models import Department

    url = reverse("admin:index") + path.format(
        department=ContentType.objects.get_for_model(Department).pk,
        company=ContentType.objects.get_for_model(Company).pk,
        north=world.acme_north.pk,
    )
    assert client.get(url).status_code == 404


@tenant_admin
def test_view_on_site_still_needs_a_staff_login(world, data, client):
    response = view_on_site(client, type(data["north"]["department"]), data["north"]["department"].pk)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_every_admin_site_serves_the_tenant_aware_view_on_site():
    from django.contrib import admin
    from django.urls import resolve

    from tests.testapp.adminsite import site

    for admin_site in (admin.site, site):
        callback = next(p.callback for p in admin_site.get_urls() if getattr(p, "name", None) == "view_on_site")
        assert callback.tenant_aware is True
        assert callback.admin_site == admin_site  # admin.site is a lazy object: == compares what it wraps
    assert resolve("/admin/r/1/1/").func.tenant_aware is True


# A tenant field named otherwise (tests/testapp/adminsite.py: Ledger and LedgerEntry, tenant_field = "owner").


@tenant_admin
def test_a_custom_tenant_field_scopes_the_changelist(world, ledgers, operator, client):
    body = page(client, reverse("admin:testapp_ledger_changelist"))
    assert "north-ledger" in body and "south-ledger" not in body and "globex-ledger" not in body


@tenant_admin
def test_a_new_object_gets_the_active_company_in_its_custom_tenant_field(world, ledgers, operator, client):
    from tests.testapp.models import Ledger

    response = client.post(
        reverse("admin:testapp_ledger_add"),
        {
            "name": "new-ledger",
            "owner": str(world.globex_one.id),
            "entries-TOTAL_FORMS": "0",
            "entries-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Ledger.objects.get(name="new-ledger").owner_id == world.acme_north.id


@tenant_admin
@pytest.mark.parametrize("view", ["add", "change"])
def test_inline_rows_get_the_parents_company_through_custom_tenant_fields(world, ledgers, operator, client, view):
    from tests.testapp.models import Ledger, LedgerEntry

    url = (
        reverse("admin:testapp_ledger_add")
        if view == "add"
        else reverse("admin:testapp_ledger_change", args=[ledgers["north"].pk])
    )
    response = client.post(
        url,
        {
            "name": "north-ledger" if view == "change" else "another-ledger",
            "entries-TOTAL_FORMS": "1",
            "entries-INITIAL_FORMS": "0",
            "entries-0-label": f"{view}-entry",
            "entries-0-owner": str(world.globex_one.id),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = LedgerEntry.objects.get(label=f"{view}-entry")
    assert entry.owner_id == world.acme_north.id
    assert Ledger.objects.get(pk=entry.ledger_id).owner_id == world.acme_north.id


@tenant_admin
def test_inline_rows_of_another_company_stay_hidden_with_a_custom_tenant_field(world, ledgers, operator, client):
    from tests.testapp.models import LedgerEntry

    # An entry of Globex hung (by hand) from Acme North's ledger does not show in its inline.
    LedgerEntry.objects.create(owner=world.globex_one, ledger=ledgers["north"], label="globex-intruder")
    body = page(client, reverse("admin:testapp_ledger_change", args=[ledgers["north"].pk]))
    assert "north-entry" in body and "globex-intruder" not in body


@tenant_admin
def test_foreign_key_choices_follow_the_related_models_custom_tenant_field(world, ledgers, operator, client):
    from tests.testapp.models import LedgerEntry

    body = page(client, reverse("admin:testapp_ledgerentry_add"))
    assert "north-entry" not in body  # nothing leaks into the add form
    response = client.post(
        reverse("admin:testapp_ledgerentry_add"), {"ledger": str(ledgers["globex"].pk), "label": "cross"}
    )
    assert response.status_code == 200  # "Select a valid choice"
    assert not LedgerEntry.objects.filter(label="cross").exists()
    accepted = client.post(
        reverse("admin:testapp_ledgerentry_add"), {"ledger": str(ledgers["north"].pk), "label": "fine"}
    )
    assert accepted.status_code == 302
    assert LedgerEntry.objects.get(label="fine").owner_id == world.acme_north.id


@tenant_admin
def test_autocomplete_of_a_custom_tenant_field_model_stays_in_the_company(world, ledgers, operator, client):
    answer = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "testapp", "model_name": "ledgerentry", "field_name": "ledger", "term": "ledger"},
    ).json()
    assert [r["text"] for r in answer["results"]] == ["north-ledger"]


@tenant_admin
@pytest.mark.parametrize("value", ["not-a-number", "99999999999999999999999", ["1", "x"]])
def test_a_malformed_autocomplete_value_is_a_form_error(world, data, operator, client, value):
    response = add_employee(client, department=value)
    assert response.status_code == 200
    assert employees_named("new@north.test") == []


def test_tenant_fields_of_models():
    from cobee_django.admin import _tenant_fields
    from cobee_django.models import Corporation, StaffGrant
    from tests.testapp.adminsite import site
    from tests.testapp.models import Employee, Ledger, Note

    assert _tenant_fields(Employee) == ["company"]
    assert _tenant_fields(Ledger, site) == ["owner"]
    assert _tenant_fields(Ledger) == ["owner"]  # the only foreign key to Company
    assert _tenant_fields(StaffGrant) == ["company"]
    assert _tenant_fields(Corporation) == [] and _tenant_fields(Note) == []


def test_an_inline_must_name_its_models_tenant_field():
    from django.contrib.admin import AdminSite

    from cobee_django.admin import TenantTabularInline
    from tests.testapp.models import Employee, Ledger, LedgerEntry, Note

    class Undeclared(TenantTabularInline):
        model = LedgerEntry

    class Declared(TenantTabularInline):
        model = LedgerEntry
        tenant_field = "owner"

    class WithoutCompany(TenantTabularInline):
        model = Note

    assert [e.id for e in Undeclared(Ledger, AdminSite()).check()] == ["cobee_django.E030"]
    assert Declared(Ledger, AdminSite()).check() == []
    assert WithoutCompany(Employee, AdminSite()).check() == []


@tenant_admin
@pytest.mark.parametrize("value", ["not-a-number", "99999999999999999999999", "-99999999999999999999999"])
def test_a_malformed_many_to_many_value_is_a_form_error(world, data, operator, client, value):
    response = add_employee(client, projects=[str(data["north"]["project"].pk), value])
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert employees_named("new@north.test") == []


# Tampered changelist input: refused like Django refuses other bad input, never a 500.

OUT_OF_RANGE = "99999999999999999999999"


@tenant_admin
@pytest.mark.parametrize("action", ["give_raise", "delete_selected"])
@pytest.mark.parametrize("selected", ["x", OUT_OF_RANGE, "1.5"])
def test_a_bulk_action_on_a_malformed_selection_does_nothing(world, data, operator, client, action, selected):
    from cobee_django.admin import MALFORMED_SELECTION_MESSAGE
    from cobee_django.state import unscoped
    from tests.testapp.models import Employee

    own = str(data["north"]["employee"].pk)
    response = client.post(
        reverse("admin:testapp_employee_changelist"),
        {"action": action, "_selected_action": [own, selected], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert MALFORMED_SELECTION_MESSAGE in response.content.decode()
    with unscoped():
        assert Employee.objects.get(pk=own).salary == 0


@tenant_admin
@pytest.mark.parametrize("row_id", ["x", OUT_OF_RANGE])
def test_list_editable_with_a_malformed_row_id_is_not_an_error_page(world, data, operator, client, row_id):
    from cobee_django.admin import MALFORMED_SELECTION_MESSAGE
    from cobee_django.state import unscoped
    from tests.testapp.models import Project

    response = client.post(
        reverse("admin:testapp_project_changelist"),
        {"form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": row_id, "form-0-name": "x", "_save": "Save"},
        follow=True,
    )
    assert response.status_code == 200
    assert MALFORMED_SELECTION_MESSAGE in response.content.decode()
    with unscoped():
        assert not Project.objects.filter(name="x").exists()


@tenant_admin
@pytest.mark.parametrize("params", [{"q": "a\x00b"}, {"company__id__exact": "\x00"}, {"department__id__exact": "\x00"}])
def test_a_nul_in_a_changelist_parameter_is_refused_like_a_bad_lookup(world, data, operator, client, params):
    response = client.get(reverse("admin:testapp_employee_changelist"), params)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


@tenant_admin
def test_a_nul_in_an_autocomplete_term_finds_nothing(world, data, operator, client):
    answer = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "testapp", "model_name": "employee", "field_name": "department", "term": "dept\x00"},
    )
    assert answer.status_code == 200 and answer.json()["results"] == []


@pytest.mark.parametrize("params", [{"q": "\x00"}, {"membership_source__exact": "\x00"}])
def test_a_nul_in_a_registry_changelist_parameter_is_refused_like_a_bad_lookup(world, client, params):
    client.force_login(make_staff("root", superuser=True))
    response = client.get(reverse("admin:cobee_django_company_changelist"), params)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
