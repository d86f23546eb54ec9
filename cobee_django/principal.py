"""The caller of an API request: a machine client, not a database user."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientPrincipal"]


@dataclass(frozen=True, eq=False)
class ClientPrincipal:
    """What a verified access token says about its client; DRF's ``request.user`` for API calls.

    It quacks like enough of a Django user for DRF (``is_authenticated``, ``pk`` for throttling)
    but has no row in the database and no Django permissions.
    """

    client_id: str
    company_id: uuid.UUID
    corporation_id: uuid.UUID | None
    scopes: frozenset[str]
    issuer: str
    claims: Mapping[str, Any] = field(repr=False)

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
