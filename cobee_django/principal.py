"""The caller of an API request: a machine client, not a database user."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["ClientPrincipal"]

_FIELDS = ("client_id", "company_id", "corporation_id", "scopes", "issuer", "claims")


class ClientPrincipal:
    """What a verified access token says about its client; DRF's ``request.user`` for API calls.

    It quacks like enough of a Django user for DRF (``is_authenticated``, ``pk`` for throttling)
    but has no row in the database and no Django permissions. Read-only, compared by identity.
    A slotted class rather than a frozen dataclass: one is built for every token verified, and a
    frozen dataclass's ``__init__`` costs several times as much.
    """

    __slots__ = _FIELDS

    client_id: str
    company_id: uuid.UUID
    corporation_id: uuid.UUID | None
    scopes: frozenset[str]
    issuer: str
    claims: Mapping[str, Any]

    def __init__(
        self,
        client_id: str,
        company_id: uuid.UUID,
        corporation_id: uuid.UUID | None,
        scopes: frozenset[str],
        issuer: str,
        claims: Mapping[str, Any],
    ) -> None:
        # The slots' own setters: __setattr__ below refuses every assignment.
        _set_client_id(self, client_id)
        _set_company_id(self, company_id)
        _set_corporation_id(self, corporation_id)
        _set_scopes(self, scopes)
        _set_issuer(self, issuer)
        _set_claims(self, claims)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"ClientPrincipal is read-only: cannot assign {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"ClientPrincipal is read-only: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), tuple(getattr(self, name) for name in _FIELDS)

    def __repr__(self) -> str:
        return (
            f"ClientPrincipal(client_id={self.client_id!r}, company_id={self.company_id!r}, "
            f"corporation_id={self.corporation_id!r}, scopes={self.scopes!r}, issuer={self.issuer!r})"
        )

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    @property
    def pk(self) -> str:
        """Stable per client, so DRF's user-based throttles count per client."""
        return f"{self.issuer}#{self.client_id}"

    id = pk

    @property
    def username(self) -> str:
        return self.client_id

    def get_username(self) -> str:
        return self.client_id

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Machine clients hold scopes, never Django model permissions."""
        return False

    def has_perms(self, perms: Any, obj: Any = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def __str__(self) -> str:
        return f"client {self.client_id} (company {self.company_id})"


_set_client_id, _set_company_id, _set_corporation_id, _set_scopes, _set_issuer, _set_claims = (
    ClientPrincipal.__dict__[name].__set__ for name in _FIELDS
)
