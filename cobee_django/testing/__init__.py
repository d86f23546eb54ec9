"""Helpers for testing code protected by cobee_django, in this project and in yours.

- :class:`TokenIssuer`: an issuer with its own RSA key pair that makes Auth0-shaped access tokens.
- :class:`JWKSServer`: a real HTTP server on 127.0.0.1 publishing issuers' key sets (with faults).
- :func:`install_key_set` / :func:`uninstall_key_set`: trust a key set without any HTTP.

A unit test needs no server::

    issuer = TokenIssuer(issuer="https://tenant.example/", audience="https://api.example")
    install_key_set(issuer.issuer, issuer.jwks())
    client.get(url, HTTP_AUTHORIZATION=issuer.bearer(company_id, scopes=["read:employees"]))
"""

from __future__ import annotations

from ..jwks import install_key_set, uninstall_key_set
from .issuer import MISSING, TokenIssuer, random_client_id
from .jwks_server import FAULTS, JWKSServer

__all__ = [
    "FAULTS",
    "MISSING",
    "JWKSServer",
    "TokenIssuer",
    "install_key_set",
    "random_client_id",
    "uninstall_key_set",
]
