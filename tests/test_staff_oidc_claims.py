"""Staff sign-in claims follow the one UUID rule of cobee_django.uuids, and their refusal is a CobeeDjangoError."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from cobee_django.exceptions import CobeeDjangoError, SignInRefused
from cobee_django.staff.oidc import REFUSED_CLAIMS, _parse_staff_claims

ID = uuid.UUID("0b6a4f3e-8c1d-4f5e-9a7b-2c3d4e5f6a7b")
ISSUER = "https://issuer.example/"


def claims(**metadata: object) -> dict[str, object]:
    return {"sub": "person", settings.COBEE_DJANGO.get("METADATA_CLAIM", "https://auth.cobee.io/metadata"): metadata}


@pytest.mark.parametrize("name", ["companyId", "corporationId"])
def test_a_canonical_id_signs_in(name: str) -> None:
    parsed = _parse_staff_claims(claims(**{name: str(ID)}), issuer=ISSUER)
    assert ID in (parsed.company_id, parsed.corporation_id)


@pytest.mark.parametrize("name", ["companyId", "corporationId"])
@pytest.mark.parametrize(
    "spelling",
    [str(ID).upper(), "{" + str(ID) + "}", ID.urn, ID.hex, f" {ID}", "not-a-uuid", str(ID)[:-1]],
)
def test_every_other_spelling_is_refused_as_in_access_tokens(name: str, spelling: str) -> None:
    with pytest.raises(SignInRefused) as refused:
        _parse_staff_claims(claims(**{name: spelling}), issuer=ISSUER)
    assert refused.value.message == REFUSED_CLAIMS


def test_sign_in_refused_lives_with_every_other_error_and_the_old_import_works() -> None:
    from cobee_django.staff import oidc

    assert oidc.SignInRefused is SignInRefused
    assert issubclass(SignInRefused, CobeeDjangoError)
