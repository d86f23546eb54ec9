"""Minting a client's access token with the shared key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import conf, keys
from .models import DevClient

__all__: list[str] = []


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def issue_token(
    client: DevClient, *, audience: str, scopes: Sequence[str], jkt: str | None = None, org_id: str | None = None
) -> IssuedToken:
    """A token carrying exactly Auth0's M2M claims and the metadata claim for ``client``.

    With ``jkt`` (the RFC 7638 thumbprint of a DPoP proof's key) the token is DPoP-bound:
    ``cnf: {"jkt": ...}`` (RFC 9449 section 6). With ``org_id`` the token names that Auth0
    organization too (``org_id``, as Auth0 issues machine-to-machine tokens for an organization).

    Raises ``Http404`` when the issuer may not run now (see :func:`conf.require_serving`).
    """
    conf.require_serving()
    lifetime = conf.token_lifetime()
    extra: dict[str, Any] = {}
    if jkt is not None:
        extra["cnf"] = {"jkt": jkt}
    if org_id is not None:
        extra["org_id"] = org_id
    access_token = keys.get_issuer().make_token(
        company_id=client.company_id,
        corporation_id=client.corporation_id,
        scopes=list(scopes),
        client_id=client.client_id,
        lifetime=lifetime,
        aud=audience,
        **extra,
    )
    return IssuedToken(access_token=access_token, expires_in=lifetime, scope=" ".join(scopes))
