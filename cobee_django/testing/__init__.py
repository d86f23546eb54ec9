"""Helpers for testing code protected by cobee_django, in this project and in yours.

- :class:`TokenIssuer`: an issuer with its own RSA key pair that makes Auth0-shaped access tokens;
  :func:`configured_issuer` gives one whose ``iss`` and ``aud`` are your settings'.
- :func:`trust`: make the app trust an issuer's keys for a block, without HTTP (or
  :func:`install_key_set` / :func:`uninstall_key_set` for the whole process).
- :class:`JWKSServer`: a real HTTP server on 127.0.0.1 publishing issuers' key sets (with faults).
- :class:`DPoPKey`: a DPoP client's key pair, making proofs (RFC 9449) and tokens bound to it.
- :class:`TenantAPIClient`: DRF's ``APIClient`` authenticated as a company or a corporation.
- :func:`tenant` (and :func:`for_company`, :func:`for_corporation`, :func:`unscoped`, ...): bind a
  tenant around a block in unit tests; :func:`make_principal` builds a ``ClientPrincipal``.
- The pytest plugin :mod:`cobee_django.testing.pytest_plugin` wraps them as fixtures.

A test calling your endpoint as a company::

    client = TenantAPIClient.for_company(company_id, scopes=["read:employees"])
    response = client.get(f"/api/v3/companies/{company_id}/employees")
    assert response.status_code == 200

Names are loaded on first use, so importing this package (as pytest does for the plugin) costs
nothing and needs no Django settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._keysets import install_key_set, installed_key_set, uninstall_key_set
    from .client import TenantAPIClient
    from .dpop import DPoPKey
    from .issuer import MISSING, TokenIssuer, random_client_id
    from .jwks_server import FAULTS, JWKSServer
    from .keys import configured_issuer, isolated_cache, trust
    from .tenancy import make_principal, tenant

_EXPORTS = {
    "DPoPKey": ".dpop",
    "FAULTS": ".jwks_server",
    "JWKSServer": ".jwks_server",
    "MISSING": ".issuer",
    "TenantAPIClient": ".client",
    "TokenIssuer": ".issuer",
    "configured_issuer": ".keys",
    "install_key_set": "._keysets",
    "installed_key_set": "._keysets",
    "isolated_cache": ".keys",
    "make_principal": ".tenancy",
    "random_client_id": ".issuer",
    "tenant": ".tenancy",
    "trust": ".keys",
    "uninstall_key_set": "._keysets",
}

__all__ = [
    "FAULTS",
    "MISSING",
    "DPoPKey",
    "JWKSServer",
    "TenantAPIClient",
    "TokenIssuer",
    "configured_issuer",
    "install_key_set",
    "installed_key_set",
    "isolated_cache",
    "make_principal",
    "random_client_id",
    "tenant",
    "trust",
    "uninstall_key_set",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
