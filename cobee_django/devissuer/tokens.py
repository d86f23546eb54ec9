"""Minting a client's access token with the shared key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import conf, keys
from .models import DevClient

__all__: list[str] = []


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def issue_token(client: DevClient, *, audience: str, scopes: Sequence[str]) -> IssuedToken:
    """A token carrying exactly Auth0's M2M claims and the metadata claim for ``client``.

    Raises ``Http404`` when the issuer may not run now (see :func:`conf.require_serving`).
    """
    conf.require_serving()
    lifetime = conf.token_lifetime()
    access_token = keys.get_issuer().make_token(
        company_id=client.company_id,
        corporation_id=client.corporation_id,
        scopes=list(scopes),
        client_id=client.client_id,
        lifetime=lifetime,
        aud=audience,
    )
    return IssuedToken(access_token=access_token, expires_in=lifetime, scope=" ".join(scopes))
