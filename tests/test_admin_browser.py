"""The admin in a real browser: OIDC sign-in, the company switcher, and another company's object.

Headless Chromium (Debian's ``chromium``, never a browser downloaded by Playwright) drives the
test project served by the live server on 127.0.0.1, whose dev issuer is the OpenID provider.
Screenshots of the switcher land in ``test-artifacts/``. Without Chromium these tests skip, unless
``COBEE_REQUIRE_BROWSER=1`` (CI), where they fail instead. Run them alone with ``pytest -m browser``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connections

from cobee_django.devissuer.people import DevPerson
from cobee_django.models import StaffIdentity
from cobee_django.state import for_company, unscoped
from testproject.api.models import Employee
from tests.testapp.admin_world import make_world, point_oidc_at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("COBEE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _unavailable(reason: str) -> None:
    if os.environ.get("COBEE_REQUIRE_BROWSER"):
        pytest.fail(f"COBEE_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser_page(tmp_path, monkeypatch):
    """A page of a fresh headless Chromium profile."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(20_000)
            yield page
        finally:
            context.close()
            # ORM calls made while Playwright runs get their own connection (asgiref locals follow
            # its context, not the thread); close it, or PostgreSQL cannot drop the test database.
            connections.close_all()


@pytest.fixture
def site(live_server, settings):
    """The test project on the live server, with two Acme companies and an operator for Acme."""
    point_oidc_at(settings, live_server.url)
    world = make_world()
    people = {}
    for company, names in (
        (world.acme_north, [("Nora", "North"), ("Nico", "North")]),
        (world.acme_south, [("Sara", "South")]),
        (world.globex_one, [("Gus", "Globex")]),
    ):
        with for_company(company.id):
            for index, (name, surname) in enumerate(names):
                people[name] = Employee.objects.create(
                    email=f"{name.lower()}@{surname.lower()}.test",
                    legal_id=f"{index}{surname}",
                    name=name,
                    surname=surname,
                )
    operators = Group.objects.create(name="Operators")
    operators.permissions.set(Permission.objects.filter(content_type__app_label="api"))
    settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "ADMIN_OIDC_GROUPS": ["Operators"]}
    DevPerson.objects.create(
        subject="dev|olivia", name="Olivia Operator", email="olivia@acme.test", corporation_id=world.acme.id
    )
    DevPerson.objects.create(subject="dev|nobody", name="Nadia Nogrant", email="nadia@example.test")
    return {"base": live_server.url, "world": world, "people": people}


def sign_in(page, base: str, person: str) -> None:
    page.goto(f"{base}/admin/")
    page.click("#cobee-sso-link")
    page.click(f"button:has-text('{person}')")
    page.wait_for_url(f"{base}/admin/")


def switch_to(page, key: str) -> None:
    page.select_option("#cobee-tenant-select", key)
    with page.expect_navigation():
        page.click("#cobee-tenant-submit")


def names_listed(page) -> set[str]:
    return {text.strip() for text in page.locator("#result_list tbody th a").all_inner_texts()}


def test_operator_signs_in_switches_company_and_edits_only_that_company(browser_page, site):
    page, base, world, people = browser_page, site["base"], site["world"], site["people"]
    sign_in(page, base, "Olivia Operator")
    assert page.inner_text("#cobee-active-tenant") == "Acme (all companies)"
    page.locator("#cobee-tenant-switcher").screenshot(path=str(ARTIFACTS / "switcher-signed-in.png"))
    assert StaffIdentity.objects.get(subject="dev|olivia").user.is_staff

    page.goto(f"{base}/admin/api/employee/")
    assert names_listed(page) == {"nora@north.test", "nico@north.test", "sara@south.test"}

    switch_to(page, f"company:{world.acme_north.id}")
    assert page.url == f"{base}/admin/api/employee/"
    assert page.inner_text("#cobee-active-tenant") == "Acme North"
    assert names_listed(page) == {"nora@north.test", "nico@north.test"}
    page.screenshot(path=str(ARTIFACTS / "switcher-acme-north.png"))

    switch_to(page, f"company:{world.acme_south.id}")
    assert names_listed(page) == {"sara@south.test"}
    page.screenshot(path=str(ARTIFACTS / "switcher-acme-south.png"))

    # Another company's object, by URL: North's employee while South is active, and Globex's.
    for other in ("Nora", "Gus"):
        response = page.goto(f"{base}/admin/api/employee/{people[other].pk}/change/")
        assert response.status == 404

    # South's own employee opens and saves.
    page.goto(f"{base}/admin/api/employee/{people['Sara'].pk}/change/")
    company_select = page.locator("select[name=company]")
    assert company_select.is_disabled()
    page.fill("input[name=surname]", "Southwood")
    with page.expect_navigation():
        page.click("input[name=_save]")
    assert page.url == f"{base}/admin/api/employee/"
    with unscoped():
        saved = Employee.objects.get(pk=people["Sara"].pk)
    assert (saved.surname, saved.company_id) == ("Southwood", world.acme_south.id)

    # The switcher offers nothing outside Acme.
    offered = page.locator("#cobee-tenant-select option").evaluate_all("nodes => nodes.map(n => n.value)")
    assert f"company:{world.globex_one.id}" not in offered
    assert set(offered) == {
        f"corporation:{world.acme.id}",
        f"company:{world.acme_north.id}",
        f"company:{world.acme_south.id}",
    }


def test_staff_without_grant_sees_a_clear_403(browser_page, site):
    page, base = browser_page, site["base"]
    sign_in(page, base, "Nadia Nogrant")
    assert page.inner_text("#cobee-active-tenant") == "No company to manage"
    response = page.goto(f"{base}/admin/api/employee/")
    assert response.status == 403
    assert "may not manage any company" in page.inner_text("#cobee-no-tenant")
    page.screenshot(path=str(ARTIFACTS / "no-company-403.png"))


def test_a_superusers_move_in_the_admin_outlives_an_older_token(
    browser_page, live_server, cobee_jwks_server, cobee_token
):
    """A superuser moves Acme South to Globex through the real autocomplete widget; a token issued an
    hour before, naming Acme, then calls the API over HTTP, and Acme's clients still cannot read South."""
    import time

    import requests
    from django.contrib.auth import get_user_model

    from cobee_django import membership
    from cobee_django.models import Company, _MembershipSource

    page, base = browser_page, live_server.url
    membership._reset()
    world = make_world()
    with for_company(world.acme_south.id):
        Employee.objects.create(email="sara@south.test", legal_id="0South", name="Sara", surname="South")
    get_user_model().objects.create_superuser("root", "root@example.test", "a long test password")

    page.goto(f"{base}/admin/login/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "a long test password")
    with page.expect_navigation():
        page.click("input[type=submit]")
    page.goto(f"{base}/admin/cobee_django/company/{world.acme_south.id}/change/")
    page.click(".field-corporation .select2-selection")
    page.fill(".select2-search__field", "Globex")
    page.click(".select2-results__option:has-text('Globex')")
    page.screenshot(path=str(ARTIFACTS / "company-moved-to-globex.png"))
    with page.expect_navigation():
        page.click("input[name=_save]")
    moved = Company.objects.get(pk=world.acme_south.id)
    assert (moved.corporation_id, moved.membership_source) == (world.globex.id, _MembershipSource.ADMIN)

    def employees_of(company, token):
        return requests.get(
            f"{base}/api/v3/companies/{company.id}/employees", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    read = ["read:employees"]
    older = cobee_token(world.acme_south.id, world.acme.id, read, iat=int(time.time()) - 3600)
    assert employees_of(world.acme_south, older).status_code == 200  # it still reaches its own company
    assert Company.objects.get(pk=world.acme_south.id).corporation_id == world.globex.id
    acme_client = cobee_token(world.acme_north.id, world.acme.id, read)
    assert employees_of(world.acme_south, acme_client).status_code in (403, 404)
    globex_client = cobee_token(world.globex_one.id, world.globex.id, read)
    answer = employees_of(world.acme_south, globex_client)
    assert answer.status_code == 200 and "sara@south.test" in answer.text
