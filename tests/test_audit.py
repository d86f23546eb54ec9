"""Audit events: signals and exactly one structured, secret-free log record per event."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from cobee_django import signals, state
from cobee_django.audit import Denial
from cobee_django.exceptions import Reason
from cobee_django.testing import MISSING, TokenIssuer
from tests.testapp.models import Employee

pytestmark = pytest.mark.urls("tests.testapp.apiviews")
DOCS = Path(__file__).resolve().parent.parent / "docs"
READ = ["read:employees"]


@pytest.fixture
def received():
    """Every audit signal sent during the test, as (signal name, kwargs)."""
    events = []
    receivers = {}
    for name in ("token_accepted", "token_rejected", "tenant_bound", "access_denied"):

        def receiver(sender, _name=name, **kwargs):
            events.append((_name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield events
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def audit_records(caplog, event=None):
    return [r for r in caplog.records if r.name.startswith("cobee_django") and (event is None or r.event == event)]


def assert_no_secret(caplog, token):
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for segment in token.split("."):
        if len(segment) > 8:
            assert segment not in text
    assert "Traceback" not in text
    assert all(r.exc_info is None and r.stack_info is None for r in caplog.records)


# --- a failed token: one line, a reason, no secret ------------------------------------------------


def _forged(issuer, company):
    attacker = TokenIssuer(issuer=issuer.issuer, audience=issuer.audience, kid=issuer.kid)
    return attacker.make_token(company)


BAD_TOKENS = {
    "expired": (lambda issuer, company: issuer.make_token(company, exp=1), "expired"),
    "forged": (_forged, "bad_signature"),
    "alg-none": (lambda issuer, company: issuer.make_token(company, headers={"alg": "none"}), "alg_not_allowed"),
    "no-company": (
        lambda issuer, company: issuer.make_token(None, **{issuer.metadata_claim: {}}),
        "bad_metadata",
    ),
    "wrong-audience": (lambda issuer, company: issuer.make_token(company, aud="https://other.example"), "bad_audience"),
    "no-exp": (lambda issuer, company: issuer.make_token(company, exp=MISSING), "missing_exp"),
    "garbage": (lambda issuer, company: "not.a.token", "bad_encoding"),
}


@pytest.mark.parametrize("case", BAD_TOKENS, ids=list(BAD_TOKENS))
def test_a_failed_token_is_one_log_line_with_a_reason_and_no_secret(client, cobee_issuer, tenants, caplog, case):
    make, reason = BAD_TOKENS[case]
    token = make(cobee_issuer, tenants.a)
    with caplog.at_level(logging.DEBUG):
        response = client.get(
            f"/api/v3/companies/{tenants.a}/employees", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_REQUEST_ID="r-1"
        )
    assert response.status_code == 401
    (record,) = audit_records(caplog)
    assert (record.event, record.reason, record.request_id) == ("token_rejected", reason, "r-1")
    assert "\n" not in record.getMessage() and f"reason={reason}" in record.getMessage()
    # No other logger carries a reason code (Django's own "Unauthorized: <path>" line has none).
    assert [r for r in caplog.records if hasattr(r, "reason")] == [record]
    assert_no_secret(caplog, token)


def test_a_rejected_token_with_a_valid_signature_names_its_client(client, cobee_issuer, tenants, caplog):
    token = cobee_issuer.make_token(tenants.a, exp=1, client_id="partner-9")
    with caplog.at_level(logging.INFO, logger="cobee_django"):
        client.get("/api/v3/either", HTTP_AUTHORIZATION=f"Bearer {token}")
    (record,) = audit_records(caplog)
    assert record.client_id == "partner-9" and record.levelno == logging.INFO
    assert "client_id=partner-9" in record.getMessage()


# --- accepted tokens and bound tenants ---------------------------------------------------------------


def test_an_accepted_request_sends_accepted_and_bound(cobee_api_client, tenants, received, caplog):
    client = cobee_api_client(company=tenants.a, scopes=READ, client_id="partner-1")
    with caplog.at_level(logging.DEBUG, logger="cobee_django"):
        response = client.get(f"/api/v3/companies/{tenants.a}/employees", HTTP_X_REQUEST_ID="abc-123")
    assert response.status_code == 200
    assert [name for name, _ in received] == ["token_accepted", "tenant_bound"]
    bound = received[1][1]
    assert bound["tenant"].company_ids == {tenants.a} and bound["principal"].client_id == "partner-1"
    assert bound["request_id"] == "abc-123"
    accepted, tenant_bound = audit_records(caplog)
    assert accepted.event == "token_accepted" and accepted.levelno == logging.DEBUG
    assert (tenant_bound.client_id, tenant_bound.company_id, tenant_bound.companies) == (
        "partner-1",
        str(tenants.a),
        str(tenants.a),
    )
    assert_no_secret(caplog, client.token)


def test_nothing_is_logged_above_debug_for_a_good_request(cobee_api_client, tenants, caplog):
    client = cobee_api_client(company=tenants.a, scopes=READ)
    with caplog.at_level(logging.INFO, logger="cobee_django"):
        assert client.get(f"/api/v3/companies/{tenants.a}/employees").status_code == 200
    assert audit_records(caplog) == []


def test_a_corporation_tenant_is_reported_with_its_companies(cobee_api_client, tenants, received):
    client = cobee_api_client(corporation=tenants.corp, scopes=READ)
    assert client.get(f"/api/v3/companies/{tenants.b}/employees").status_code == 200
    (bound,) = [kwargs for name, kwargs in received if name == "tenant_bound"]
    assert bound["tenant"].company_ids == {tenants.a, tenants.b} and bound["tenant"].corporation_id == tenants.corp


# --- access denied -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "path", "status", "reason", "level"),
    [
        pytest.param([], "companies/{a}/employees", 403, "insufficient_scope", logging.INFO, id="scope"),
        pytest.param(READ, "companies/{c}/employees", 403, "company_not_reachable", logging.WARNING, id="company"),
        pytest.param(
            ["read:corporation", "read:departments"],
            "corporations/{other_corp}/departments",
            403,
            "corporation_not_reachable",
            logging.WARNING,
            id="corporation",
        ),
        pytest.param(READ, "employees/{c_employee}", 404, "object_not_reachable", logging.WARNING, id="object"),
    ],
)
def test_access_denied_is_one_record_and_one_signal(
    cobee_api_client, tenants, received, caplog, scopes, path, status, reason, level
):
    with state.unscoped():
        tenants.c_employee = Employee.objects.create(company_id=tenants.c, email="x@c").pk
    client = cobee_api_client(company=tenants.a, corporation=tenants.corp, scopes=scopes, client_id="p-2")
    url = "/api/v3/" + path.format(**vars(tenants))
    with caplog.at_level(logging.INFO, logger="cobee_django"):
        response = client.get(url, HTTP_X_REQUEST_ID="req-9")
    assert response.status_code == status
    denied = [kwargs for name, kwargs in received if name == "access_denied"]
    assert len(denied) == 1
    assert (denied[0]["reason"], denied[0]["status"], denied[0]["request_id"]) == (reason, status, "req-9")
    assert denied[0]["principal"].client_id == "p-2"
    (record,) = audit_records(caplog)
    assert (record.event, record.reason, record.levelno) == ("access_denied", reason, level)
    assert (record.client_id, record.company_id, record.corporation_id) == ("p-2", str(tenants.a), str(tenants.corp))
    assert (record.method, record.path, record.status) == ("GET", url, status)
    assert_no_secret(caplog, client.token)


def test_a_permission_composed_with_or_that_allows_records_nothing(cobee_api_client, tenants, received):
    client = cobee_api_client(company=tenants.a)
    assert client.get("/api/v3/either").status_code == 200
    assert [name for name, _ in received if name == "access_denied"] == []


def test_a_missing_object_is_not_a_denial(cobee_api_client, tenants, received):
    client = cobee_api_client(company=tenants.a, scopes=READ)
    assert client.get("/api/v3/employees/999999").status_code == 404
    assert [name for name, _ in received if name == "access_denied"] == []


def test_anonymous_and_rejected_requests_are_not_denials(client, tenants, received):
    assert client.get(f"/api/v3/companies/{tenants.a}/employees").status_code == 401
    assert client.get(f"/api/v3/companies/{tenants.a}/employees", HTTP_AUTHORIZATION="Bearer x.y.z").status_code == 401
    assert [name for name, _ in received] == ["token_rejected"]


@pytest.mark.urls("tests.testapp.authviews")
def test_a_403_from_your_own_permission_is_permission_denied(cobee_api_client, tenants, received):
    client = cobee_api_client(company=tenants.a)
    assert client.post("/write").status_code == 403
    (denied,) = [kwargs for name, kwargs in received if name == "access_denied"]
    assert denied["reason"] == "permission_denied"


def test_a_path_cannot_forge_a_log_line(cobee_api_client, tenants, caplog):
    client = cobee_api_client(company=tenants.a, scopes=READ)
    with caplog.at_level(logging.INFO, logger="cobee_django"):
        response = client.get(f"/api/v3/companies/{tenants.c}%0Aevent=token_accepted/employees")
    assert response.status_code in (403, 404)
    for record in audit_records(caplog):
        assert "\n" not in record.getMessage()


def test_a_failing_receiver_breaks_nothing(cobee_api_client, tenants, caplog):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    signals.access_denied.connect(broken)
    signals.tenant_bound.connect(broken)
    try:
        client = cobee_api_client(company=tenants.a)
        assert client.get(f"/api/v3/companies/{tenants.a}/employees").status_code == 403
    finally:
        signals.access_denied.disconnect(broken)
        signals.tenant_bound.disconnect(broken)
    errors = [r for r in audit_records(caplog) if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("RuntimeError" in r.getMessage() for r in errors)


# --- the documented codes are the code's codes ----------------------------------------------------------


def _documented_codes(page: str, heading: str) -> list[str]:
    text = (DOCS / page).read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def test_every_token_reason_is_documented():
    assert _documented_codes("audit.md", "## Token reason codes") == [r.value for r in Reason]


def test_every_denial_reason_is_documented():
    assert _documented_codes("audit.md", "## Access reason codes") == [d.value for d in Denial]


# --- the admin ------------------------------------------------------------------------------------------


@pytest.mark.urls("tests.testapp.adminsite")
def test_a_staff_user_without_grant_is_an_audited_denial(db, client, received, caplog):
    from django.urls import reverse

    from tests.testapp.admin_world import make_staff, make_world

    make_world()
    user = make_staff("nobody", perms=("view_employee",))
    client.force_login(user)
    with caplog.at_level(logging.INFO, logger="cobee_django"):
        assert client.get(reverse("admin:testapp_employee_changelist")).status_code == 403
    (denied,) = [kwargs for name, kwargs in received if name == "access_denied"]
    assert denied["reason"] == "no_tenant" and denied["principal"] == user
    (record,) = audit_records(caplog, "access_denied")
    assert record.user_id == str(user.pk) and record.client_id is None
