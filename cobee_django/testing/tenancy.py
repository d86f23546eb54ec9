"""Bind a tenant around a block in unit tests, and build principals without tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..exceptions import CobeeDjangoError
from ..principal import ClientPrincipal
from ..state import Tenant, for_tenant
from ..state import tenant_for_companies as _tenant_for_companies

__all__: list[str] = []


def make_principal(
    company_id: uuid.UUID | str,
    corporation_id: uuid.UUID | str | None = None,
    scopes: Iterable[str] = (),
    *,
    client_id: str = "test-client",
    issuer: str = "https://issuer.test/",
    claims: dict[str, Any] | None = None,
) -> ClientPrincipal:
    """A :class:`~cobee_django.principal.ClientPrincipal` as a verified token would give (no token)."""
    return ClientPrincipal(
        client_id=client_id,
        company_id=uuid.UUID(str(company_id)),
        corporation_id=uuid.UUID(str(corporation_id)) if corporation_id is not None else None,
        scopes=frozenset(scopes),
        issuer=issuer,
        claims=claims if claims is not None else {"azp": client_id},
    )


@contextmanager
def tenant(
    company: uuid.UUID | str | None = None,
    *,
    companies: Iterable[uuid.UUID | str] = (),
    corporation: uuid.UUID | str | None = None,
    principal: Any = None,
) -> Iterator[Tenant]:
    """Bind, for the block, a tenant reaching ``company`` and ``companies`` exactly.

    With ``corporation`` and no company, the tenant reaches every company of the corporation as
    membership knows them now (like :func:`cobee_django.state.for_corporation`); with companies
    too, it reaches exactly those, as that corporation. The tenant is unbound on exit, exceptions
    included. Use it in unit tests of code that reads tenant models outside a request::

        with tenant(company_id):
            assert Employee.objects.count() == 2
    """
    ids = [*([company] if company is not None else []), *companies]
    if corporation is not None and not ids:
        from ..membership import companies_of

        corporation_id = uuid.UUID(str(corporation))
        value = Tenant(companies_of(corporation_id), corporation_id, principal)
    elif ids:
        value = _tenant_for_companies(ids, principal)
        if corporation is not None:
            value = Tenant(value.company_ids, uuid.UUID(str(corporation)), principal)
    else:
        raise CobeeDjangoError("tenant() needs a company, companies or a corporation; use unscoped() for all rows.")
    with for_tenant(value) as bound:
        yield bound
