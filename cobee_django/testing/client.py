"""DRF's test client, authenticated as a company or a corporation with a real signed token."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from rest_framework.test import APIClient

from ..exceptions import CobeeDjangoError
from .issuer import TokenIssuer
from .keys import configured_issuer, trust

__all__: list[str] = []


class TenantAPIClient(APIClient):
    """An ``APIClient`` whose requests carry a real access token for a company or a corporation.

    The token is signed by ``issuer`` (default :func:`~cobee_django.testing.configured_issuer`, whose
    ``iss`` and ``aud`` are your settings'), and its key set is trusted around each request
    (``inject_keys=True``, no HTTP; pass ``False`` when a :class:`~cobee_django.testing.JWKSServer`
    serves the keys). Everything the app does with a token runs for real: signature, claims,
    tenant binding, scopes.

    ``TenantAPIClient.for_company(company_id, scopes=[...])`` and ``for_corporation(...)`` build a
    ready client; :meth:`authenticate_as` switches an existing one. Extra keyword arguments are claim
    overrides (``client_id="my-client"``, ``exp=0``, ``gty=MISSING``; see
    :meth:`TokenIssuer.make_token`).
    """

    def __init__(self, *args: Any, issuer: TokenIssuer | None = None, inject_keys: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._issuer = issuer
        self.inject_keys = inject_keys
        #: The token sent with each request (``None`` until :meth:`authenticate_as`).
        self.token: str | None = None

    @property
    def issuer(self) -> TokenIssuer:
        """The issuer that signs this client's tokens."""
        if self._issuer is None:
            self._issuer = configured_issuer()
        return self._issuer

    @classmethod
    def for_company(
        cls,
        company_id: uuid.UUID | str,
        *,
        scopes: Iterable[str] = (),
        issuer: TokenIssuer | None = None,
        **claims: Any,
    ) -> TenantAPIClient:
        """A client whose token grants ``company_id`` with ``scopes``."""
        client = cls(issuer=issuer)
        client.authenticate_as(company_id=company_id, scopes=scopes, **claims)
        return client

    @classmethod
    def for_corporation(
        cls,
        corporation_id: uuid.UUID | str,
        *,
        company_id: uuid.UUID | str | None = None,
        scopes: Iterable[str] = (),
        issuer: TokenIssuer | None = None,
        **claims: Any,
    ) -> TenantAPIClient:
        """A client whose token grants every company of ``corporation_id``.

        Tokens always name a company too (``companyId`` is required); without ``company_id`` the
        first company of the corporation in the ``Company`` table is used.
        """
        client = cls(issuer=issuer)
        client.authenticate_as(company_id=company_id, corporation_id=corporation_id, scopes=scopes, **claims)
        return client

    def authenticate_as(
        self,
        company_id: uuid.UUID | str | None = None,
        corporation_id: uuid.UUID | str | None = None,
        scopes: Iterable[str] = (),
        **claims: Any,
    ) -> str:
        """Send a fresh token for ``company_id`` / ``corporation_id`` with every request; returns it."""
        if company_id is None:
            if corporation_id is None:
                raise CobeeDjangoError("authenticate_as() needs a company_id, a corporation_id or both.")
            company_id = _first_company_of(corporation_id)
        self.token = self.issuer.make_token(company_id, corporation_id, scopes=list(scopes), **claims)
        self.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return self.token

    def logout(self) -> None:
        """Forget the token (and any session), like ``APIClient.logout``."""
        self.token = None
        super().logout()

    def request(self, **kwargs: Any) -> Any:
        if not self.inject_keys:
            return super().request(**kwargs)
        with trust(self.issuer):
            return super().request(**kwargs)


def _first_company_of(corporation_id: uuid.UUID | str, keyword: str = "company_id") -> uuid.UUID:
    """The corporation's first company; the error names ``keyword``, the caller's own argument."""
    from ..models import Company

    company = Company.objects.filter(corporation_id=corporation_id).order_by("pk").first()
    if company is None:
        raise CobeeDjangoError(
            f"The corporation {corporation_id} has no company in the Company table; create one, or pass "
            f"{keyword}= as well."
        )
    company_id: uuid.UUID = company.pk
    return company_id
