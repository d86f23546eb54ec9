"""The development issuer names an Auth0 organization (org_id) when asked, and dev_token can name one or
bind a token to a DPoP key."""

from __future__ import annotations

import pytest
from django.core.management import CommandError

from cobee_django.testing import DPoPKey

from .test_devissuer import AUDIENCE, COMPANY, claims_of, dev_token, form, post_form


@pytest.fixture(autouse=True)
def dev_issuer_settings(settings, tmp_path):
    settings.COBEE_DEV_ISSUER = {**settings.COBEE_DEV_ISSUER, "KEY_DIR": tmp_path, "ENABLED": True}
    settings.DEBUG = True


@pytest.fixture
def dev_client(db):
    from cobee_django.devissuer.models import DevClient

    return DevClient.objects.create_client(company_id=COMPANY, name="org")


def request_token(client, dev_client, **params):
    model, secret = dev_client
    return post_form(
        client,
        "/oauth/token",
        form(
            grant_type="client_credentials",
            client_id=model.client_id,
            client_secret=secret,
            audience=AUDIENCE,
            **params,
        ),
    )


def test_a_token_request_for_an_organization_names_it(client, dev_client):
    response = request_token(client, dev_client, organization="org_9ybsU1dN2dKfDkBi")
    assert response.status_code == 200
    claims = claims_of(response.json()["access_token"])
    assert claims["org_id"] == "org_9ybsU1dN2dKfDkBi"
    assert "org_id" not in claims_of(request_token(client, dev_client).json()["access_token"])


@pytest.mark.parametrize("organization", ["9ybsU1dN2dKfDkBi", "org_", "org_with space", "org_" + "a" * 65])
def test_a_malformed_organization_is_an_invalid_request(client, dev_client, organization):
    response = request_token(client, dev_client, organization=organization)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_dev_token_names_an_organization_and_binds_a_key(db):
    key = DPoPKey()
    claims = claims_of(dev_token("--company", str(COMPANY), "--org-id", "org_abc123", "--dpop-jkt", key.jkt))
    assert claims["org_id"] == "org_abc123"
    assert claims["cnf"] == {"jkt": key.jkt}


@pytest.mark.parametrize("args", [["--org-id", "abc"], ["--dpop-jkt", "short"]])
def test_dev_token_refuses_malformed_values(db, args):
    with pytest.raises(CommandError):
        dev_token("--company", str(COMPANY), *args)
