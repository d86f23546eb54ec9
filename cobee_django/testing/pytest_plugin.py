"""pytest fixtures for projects that use cobee_django (registered by entry point; needs pytest-django).

Fixtures (each does nothing until a test asks for it, so projects without Django are unaffected):

``cobee_issuer``
    A :class:`~cobee_django.testing.TokenIssuer` shaped like your configured issuer, whose key set
    the app trusts for the test (injected, no HTTP; served over HTTP with ``cobee_jwks_server``).
``cobee_token``
    ``cobee_token(company=..., corporation=None, scopes=(), **claims)``: a signed access token.
``cobee_api_client``
    ``cobee_api_client(company=..., corporation=None, scopes=(), **claims)``: a
    :class:`~cobee_django.testing.TenantAPIClient` authenticated as that tenant (enables the
    database for the test).
``cobee_tenant``
    ``with cobee_tenant(company=...):`` binds a tenant around a block (see
    :func:`cobee_django.testing.tenant`).
``cobee_jwks_server``
    A :class:`~cobee_django.testing.JWKSServer` on 127.0.0.1 publishing ``cobee_issuer``'s keys, with
    ``JWKS_URL`` pointed at it: for live-server tests where keys must travel over HTTP.
``cobee_isolated_cache``
    Every cache alias under a fresh key prefix for the test (:func:`cobee_django.testing.isolated_cache`):
    throttle counts and cached key sets never leak between tests. The fixtures above use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import uuid

    from .client import TenantAPIClient
    from .issuer import TokenIssuer
    from .jwks_server import JWKSServer

__all__: list[str] = []

SERVED = "cobee_jwks_server"


def _require_django() -> None:
    from django.conf import settings

    if not settings.configured:
        pytest.fail(
            "cobee_django's fixtures need a configured Django project (pytest-django with DJANGO_SETTINGS_MODULE).",
            pytrace=False,
        )


@pytest.fixture
def cobee_isolated_cache() -> Iterator[None]:
    """Every cache alias under a fresh key prefix for this test (see :func:`~cobee_django.testing.isolated_cache`)."""
    _require_django()
    from .keys import isolated_cache

    with isolated_cache():
        yield


@pytest.fixture
def cobee_issuer(request: pytest.FixtureRequest, cobee_isolated_cache: None) -> Iterator[TokenIssuer]:
    """An issuer shaped like the configured one, trusted by the app for this test."""
    _require_django()
    from .keys import configured_issuer, trust

    issuer = configured_issuer()
    if SERVED in request.fixturenames:
        yield issuer  # its keys travel over HTTP (cobee_jwks_server)
        return
    with trust(issuer):
        yield issuer


@pytest.fixture
def cobee_jwks_server(request: pytest.FixtureRequest, cobee_issuer: TokenIssuer) -> Iterator[JWKSServer]:
    """A JWKS server on 127.0.0.1 serving ``cobee_issuer``'s keys; ``JWKS_URL`` points at it."""
    from .jwks_server import JWKSServer

    settings = request.getfixturevalue("settings")
    raw = dict(getattr(settings, "COBEE_DJANGO", None) or {})
    with JWKSServer(cobee_issuer) as server:
        if raw.get("ISSUERS"):
            entries = [dict(entry) for entry in raw["ISSUERS"]]
            entries[0]["JWKS_URL"] = server.jwks_url
            raw["ISSUERS"] = entries
        else:
            raw["JWKS_URL"] = server.jwks_url
        settings.COBEE_DJANGO = raw
        yield server


@pytest.fixture
def cobee_token(cobee_issuer: TokenIssuer) -> Callable[..., str]:
    """``cobee_token(company=..., corporation=None, scopes=(), **claims)``: a token the app accepts."""

    def make(
        company: uuid.UUID | str | None = None,
        corporation: uuid.UUID | str | None = None,
        scopes: Iterable[str] = (),
        **claims: Any,
    ) -> str:
        return cobee_issuer.make_token(company, corporation, scopes=list(scopes), **claims)

    return make


@pytest.fixture
def cobee_api_client(
    request: pytest.FixtureRequest, cobee_issuer: TokenIssuer, db: None
) -> Callable[..., TenantAPIClient]:
    """``cobee_api_client(company=..., corporation=None, scopes=(), **claims)``: an authenticated client.

    Depends on pytest-django's ``db``: binding a tenant may read the ``Company`` table, and
    pytest-django creates the test database only for tests that name it among their fixtures.
    """
    from .client import TenantAPIClient

    served = SERVED in request.fixturenames

    def make(
        company: uuid.UUID | str | None = None,
        corporation: uuid.UUID | str | None = None,
        scopes: Iterable[str] = (),
        **claims: Any,
    ) -> TenantAPIClient:
        client = TenantAPIClient(issuer=cobee_issuer, inject_keys=not served)
        if company is None and corporation is not None:
            from .client import _first_company_of

            company = _first_company_of(corporation, keyword="company")  # this fixture's own keyword
        client.authenticate_as(company, corporation, scopes, **claims)
        return client

    return make


@pytest.fixture
def cobee_tenant() -> Callable[..., Any]:
    """``with cobee_tenant(company=...):`` binds a tenant for the block (:func:`cobee_django.testing.tenant`)."""
    _require_django()
    from .tenancy import tenant

    return tenant
