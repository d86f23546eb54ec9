"""Where the tenant comes from (TENANT_CLAIMS): Cobee's metadata claim by default, Auth0's org_id through
ORGANIZATION_RESOLVER, or a custom claim path; the same identifier rules for each, and a token whose
sources disagree is refused."""

from __future__ import annotations

import uuid

import pytest

from cobee_django import conf
from cobee_django.exceptions import Reason, TokenRejected
from cobee_django.testing import MISSING
from cobee_django.tokens import verify_token

COMPANY = uuid.UUID("7a1c2e3f-4b5d-4e6f-8a9b-0c1d2e3f4a5b")
OTHER = uuid.UUID("8b2d3f40-5c6e-4f70-9bac-1d2e3f4a5b6c")
CORPORATION = uuid.UUID("9c3e4051-6d7f-4081-8cbd-2e3f4a5b6c7d")
ORGANIZATIONS = {"org_9ybsU1dN2dKfDkBi": COMPANY, "org_other00000000x": OTHER, "org_notuuid0000000": "nope"}
METADATA = "https://auth.cobee.io/metadata"


def resolve(org_id: str):
    """The test's ORGANIZATION_RESOLVER."""
    return ORGANIZATIONS.get(org_id)


@pytest.fixture
def source(settings):
    def set_source(value, resolver: str | None = "tests.test_tenant_claims.resolve"):
        settings.COBEE_DJANGO = {**settings.COBEE_DJANGO, "TENANT_CLAIMS": value, "ORGANIZATION_RESOLVER": resolver}

    return set_source


def refused(token, reason):
    with pytest.raises(TokenRejected) as caught:
        verify_token(token)
    assert caught.value.reason is reason, caught.value.detail


def test_the_metadata_claim_is_the_default(cobee_issuer):
    principal = verify_token(cobee_issuer.make_token(COMPANY, CORPORATION)).principal
    assert (principal.company_id, principal.corporation_id) == (COMPANY, CORPORATION)


def test_org_id_names_the_company_through_the_resolver(cobee_issuer, source):
    source("org_id")
    token = cobee_issuer.make_token(None, org_id="org_9ybsU1dN2dKfDkBi", **{METADATA: MISSING})
    principal = verify_token(token).principal
    assert (principal.company_id, principal.corporation_id) == (COMPANY, None)


def test_with_org_id_the_corporation_still_comes_from_the_metadata_claim(cobee_issuer, source):
    source("org_id")
    token = cobee_issuer.make_token(COMPANY, CORPORATION, org_id="org_9ybsU1dN2dKfDkBi")
    principal = verify_token(token).principal
    assert (principal.company_id, principal.corporation_id) == (COMPANY, CORPORATION)


@pytest.mark.parametrize(
    ("org_id", "reason"),
    [
        (MISSING, Reason.BAD_ORGANIZATION),
        (None, Reason.BAD_ORGANIZATION),
        (42, Reason.BAD_ORGANIZATION),
        ("9ybsU1dN2dKfDkBi", Reason.BAD_ORGANIZATION),
        ("org_with spaces", Reason.BAD_ORGANIZATION),
        ("org_" + "a" * 65, Reason.BAD_ORGANIZATION),
        ("org_unknown000000", Reason.BAD_ORGANIZATION),
        ("org_notuuid0000000", Reason.BAD_ORGANIZATION),
    ],
)
def test_org_id_follows_the_identifier_rules(cobee_issuer, source, org_id, reason):
    source("org_id")
    refused(cobee_issuer.make_token(None, org_id=org_id, **{METADATA: MISSING}), reason)


def test_org_id_and_metadata_in_disagreement_are_refused(cobee_issuer, source):
    source("org_id")
    refused(cobee_issuer.make_token(OTHER, org_id="org_9ybsU1dN2dKfDkBi"), Reason.TENANT_CLAIMS_DISAGREE)
    # The other way round: the metadata claim is the source, org_id names another company.
    source("metadata")
    refused(cobee_issuer.make_token(COMPANY, org_id="org_other00000000x"), Reason.TENANT_CLAIMS_DISAGREE)
    assert verify_token(cobee_issuer.make_token(COMPANY, org_id="org_9ybsU1dN2dKfDkBi")).principal.company_id == COMPANY


def test_without_a_resolver_org_id_is_not_a_source_and_not_compared(cobee_issuer, source):
    source("metadata", resolver=None)
    assert verify_token(cobee_issuer.make_token(COMPANY, org_id="org_other00000000x")).principal.company_id == COMPANY


def test_a_custom_claim_path(cobee_issuer, source):
    source(
        {"company": ["https://example.com/tenant", "company"], "corporation": ["https://example.com/tenant", "group"]}
    )
    tenant = {"company": str(COMPANY), "group": str(CORPORATION)}
    token = cobee_issuer.make_token(None, **{"https://example.com/tenant": tenant, METADATA: MISSING})
    principal = verify_token(token).principal
    assert (principal.company_id, principal.corporation_id) == (COMPANY, CORPORATION)


@pytest.mark.parametrize(
    ("tenant", "reason"),
    [
        (MISSING, Reason.BAD_COMPANY),
        ({}, Reason.BAD_COMPANY),
        ("a string", Reason.BAD_COMPANY),
        ({"company": str(COMPANY).upper()}, Reason.BAD_COMPANY),
        ({"company": None}, Reason.BAD_COMPANY),
        ({"company": str(COMPANY), "group": "{" + str(CORPORATION) + "}"}, Reason.BAD_CORPORATION),
    ],
)
def test_a_custom_path_follows_the_identifier_rules(cobee_issuer, source, tenant, reason):
    source(
        {"company": ["https://example.com/tenant", "company"], "corporation": ["https://example.com/tenant", "group"]}
    )
    refused(cobee_issuer.make_token(None, **{"https://example.com/tenant": tenant, METADATA: MISSING}), reason)


def test_a_custom_path_and_metadata_in_disagreement_are_refused(cobee_issuer, source):
    source({"company": ["tenant_id"]})
    refused(cobee_issuer.make_token(OTHER, tenant_id=str(COMPANY)), Reason.TENANT_CLAIMS_DISAGREE)
    refused(cobee_issuer.make_token(COMPANY, CORPORATION, tenant_id=str(COMPANY)), Reason.TENANT_CLAIMS_DISAGREE)
    assert verify_token(cobee_issuer.make_token(COMPANY, tenant_id=str(COMPANY))).principal.company_id == COMPANY


@pytest.mark.parametrize(
    "value",
    ["org", "", 5, {"company": []}, {"company": "claim"}, {"company": ["a"], "corporation": [""]}, {"tenant": ["a"]}],
)
def test_wrong_tenant_claims_are_a_check_error(value):
    problems = conf.validate({"ISSUER": "https://tenant.example/", "AUDIENCE": "a", "TENANT_CLAIMS": value})
    assert [p.id for p in problems] == ["cobee_django.E073"]


def test_org_id_without_a_resolver_is_a_check_error():
    base = {"ISSUER": "https://tenant.example/", "AUDIENCE": "a", "TENANT_CLAIMS": "org_id"}
    assert [p.id for p in conf.validate(base)] == ["cobee_django.E073"]
    assert conf.validate({**base, "ORGANIZATION_RESOLVER": "tests.test_tenant_claims.resolve"}) == []


@pytest.mark.parametrize(
    ("tenant_claims", "metadata", "reason"),
    [
        ("org_id", {"companyId": "nope"}, Reason.BAD_COMPANY),
        ("org_id", {"companyId": str(COMPANY), "corporationId": "nope"}, Reason.BAD_CORPORATION),
        ({"company": ["tenant_id"]}, {"companyId": "nope"}, Reason.BAD_COMPANY),
        ({"company": ["tenant_id"]}, {"companyId": str(COMPANY), "corporationId": "nope"}, Reason.BAD_CORPORATION),
    ],
)
def test_the_metadata_claim_beside_another_source_follows_the_identifier_rules(
    cobee_issuer, source, tenant_claims, metadata, reason
):
    source(tenant_claims)
    claims = {"org_id": "org_9ybsU1dN2dKfDkBi", "tenant_id": str(COMPANY), METADATA: metadata}
    refused(cobee_issuer.make_token(None, **claims), reason)


CALLS: list[str] = []


def counting_resolve(org_id: str):
    """A resolver that records each question."""
    CALLS.append(org_id)
    return ORGANIZATIONS.get(org_id)


def test_each_organization_is_resolved_once(cobee_issuer, source):
    source("org_id", resolver="tests.test_tenant_claims.counting_resolve")
    CALLS.clear()
    for n in range(3):  # three different tokens (a token seen before is not verified again)
        token = cobee_issuer.make_token(None, org_id="org_9ybsU1dN2dKfDkBi", jti=f"t{n}", **{METADATA: MISSING})
        assert verify_token(token).principal.company_id == COMPANY
    for n in range(2):
        unknown = cobee_issuer.make_token(None, org_id="org_unknown000000", jti=f"u{n}", **{METADATA: MISSING})
        refused(unknown, Reason.BAD_ORGANIZATION)
    # A known organization is remembered; an unknown one is asked again (it may be registered later).
    assert CALLS == ["org_9ybsU1dN2dKfDkBi", "org_unknown000000", "org_unknown000000"]


def test_org_id_as_the_source_without_a_resolver_refuses_every_token(cobee_issuer, source):
    # Settings refuse this combination (E073); a verifier built from unchecked settings still fails closed.
    import dataclasses

    from cobee_django.tokens import TokenVerifier

    source("org_id")
    unchecked = dataclasses.replace(conf.get_settings(), organization_resolver=None)
    with pytest.raises(TokenRejected) as caught:
        TokenVerifier(unchecked).verify(
            cobee_issuer.make_token(None, org_id="org_9ybsU1dN2dKfDkBi", **{METADATA: MISSING})
        )
    assert caught.value.reason is Reason.BAD_ORGANIZATION
